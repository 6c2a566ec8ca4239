"""Augmentation recipes with exact, counter-based replay.

Each (sample, view) gets int32 parameters ``(top, left, height, width, flip)`` drawn from a
stateless counter-based generator keyed by ``(seed, sample index, view, draw)``
(:func:`counter_uniform`), so the teacher's and the student's views are bit-identical
whatever the batch size, order, worker or process count. :func:`replay` applies recorded
parameters to uint8 images on their own device.

The recipes and the parameter generator need numpy only; the replay (torch) is imported on
first use of :func:`replay`, :func:`eval_view`, :func:`normalize` or :func:`check_params`, so
that reading a store's records (``info``, ``verify``, ``copy``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._counter import GOLDEN_GAMMA, counter_bits, counter_uniform, splitmix64
from ._recipes import (
    CURRENT_VERSION,
    DEFAULT_CROP_PCT,
    NUM_PARAMS,
    PARAM_NAMES,
    RECIPES,
    VERSIONS,
    AugmentRecipe,
    ParamsLayout,
    canonical_recipe,
    get_recipe,
    output_size,
    sample_params,
)

if TYPE_CHECKING:
    from ._replay import check_params, eval_view, normalize, replay

_REPLAY = ("check_params", "eval_view", "normalize", "replay")

__all__ = [
    "CURRENT_VERSION",
    "DEFAULT_CROP_PCT",
    "VERSIONS",
    "canonical_recipe",
    "GOLDEN_GAMMA",
    "NUM_PARAMS",
    "PARAM_NAMES",
    "RECIPES",
    "AugmentRecipe",
    "ParamsLayout",
    "check_params",
    "counter_bits",
    "counter_uniform",
    "eval_view",
    "get_recipe",
    "normalize",
    "output_size",
    "replay",
    "sample_params",
    "splitmix64",
]


def __getattr__(name: str) -> Any:
    if name not in _REPLAY:
        raise AttributeError(f"module 'sortkd_cache.augment' has no attribute '{name}'")
    value = getattr(importlib.import_module("sortkd_cache.augment._replay"), name)
    globals()[name] = value
    return value
