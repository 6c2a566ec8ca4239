"""`sortkd-cache verify`: every chunk checked (:mod:`._stage`), and with ``--recompute N``
N sample-views recomputed by the store's teacher (:mod:`._recompute`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sortkd_cache import lazy_names

if TYPE_CHECKING:
    from sortkd_cache.pipelines.verify._config import VerifyConfig
    from sortkd_cache.pipelines.verify._recompute import (
        Recompute,
        RecomputeConfig,
        RecomputeReport,
        format_recompute,
        recorded_checkpoint,
        tolerance,
    )
    from sortkd_cache.pipelines.verify._stage import format_report, verify

#: name -> the module that defines it
_NAMES = {
    "VerifyConfig": "._config",
    "format_report": "._stage",
    "verify": "._stage",
    "Recompute": "._recompute",
    "RecomputeConfig": "._recompute",
    "RecomputeReport": "._recompute",
    "format_recompute": "._recompute",
    "recorded_checkpoint": "._recompute",
    "tolerance": "._recompute",
}
__all__ = [
    "Recompute",
    "RecomputeConfig",
    "RecomputeReport",
    "VerifyConfig",
    "format_recompute",
    "format_report",
    "recorded_checkpoint",
    "tolerance",
    "verify",
]

__getattr__ = lazy_names(__name__, _NAMES)
