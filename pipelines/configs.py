"""The stage configurations, importable without torch: ``TrainConfig``, ``DumpConfig``,
``SortConfig``, ``DeriveConfig`` (``copy``) and ``VerifyConfig`` (``run``'s ``RunConfig`` and
``sweep``'s ``SweepGrid``/``SweepConfig`` live in their commands, above this module). Each is a
frozen dataclass whose fields own their options (help, choices, bounds; see
:mod:`sortkd_cache.options`); the CLI, recipes and ``config.json`` derive from them.
"""

from __future__ import annotations

from sortkd_cache.pipelines.copy import DeriveConfig
from sortkd_cache.pipelines.dump import DumpConfig
from sortkd_cache.pipelines.sort import SortConfig
from sortkd_cache.pipelines.train import SEED_MAX, Schedule, TrainConfig
from sortkd_cache.pipelines.verify import VerifyConfig

__all__ = [
    "SEED_MAX",
    "DeriveConfig",
    "DumpConfig",
    "Schedule",
    "SortConfig",
    "TrainConfig",
    "VerifyConfig",
]
