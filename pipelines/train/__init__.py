"""`sortkd-cache train`: one student from the cache (or an online teacher), in a run directory.

:mod:`._stage` drives a run, :mod:`._config` is :class:`TrainConfig`, :mod:`._setup` what a
run resolves before its first step, :mod:`._data` its soft labels, :mod:`._eval` the test
views, :mod:`._run` one member and its run directory, :mod:`._session` the loop that
``train`` and ``sweep`` share, :mod:`._tensorboard` ``--log tensorboard``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sortkd_cache import lazy_names

if TYPE_CHECKING:
    from sortkd_cache.pipelines.train._config import (
        APPLIES,
        LOGIT_CHOICES,
        RUNTIME_KEYS,
        SEED_MAX,
        Schedule,
        TrainConfig,
        check_schedule,
        recipe_keys,
        resume_difference,
    )
    from sortkd_cache.pipelines.train._run import Diverged, TrainResult
    from sortkd_cache.pipelines.train._session import Session
    from sortkd_cache.pipelines.train._stage import Trainer, current_world, train

#: name -> the module that defines it
_NAMES = {
    "APPLIES": "._config",
    "LOGIT_CHOICES": "._config",
    "RUNTIME_KEYS": "._config",
    "SEED_MAX": "._config",
    "Schedule": "._config",
    "TrainConfig": "._config",
    "check_schedule": "._config",
    "recipe_keys": "._config",
    "resume_difference": "._config",
    "Diverged": "._run",
    "TrainResult": "._run",
    "Session": "._session",
    "Trainer": "._stage",
    "current_world": "._stage",
    "train": "._stage",
}
__all__ = [
    "APPLIES",
    "Diverged",
    "LOGIT_CHOICES",
    "RUNTIME_KEYS",
    "SEED_MAX",
    "Schedule",
    "Session",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "check_schedule",
    "current_world",
    "recipe_keys",
    "resume_difference",
    "train",
]

__getattr__ = lazy_names(__name__, _NAMES)
