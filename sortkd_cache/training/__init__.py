"""Training: the pieces of a student's optimisation step.

Configuration (no torch at import; the train configuration takes these fields flat):

* :data:`OPTIMIZERS` (``sgd``, ``adamw``) and :func:`make_optimizer`;
* :data:`SCHEDULES` (``multistep``, ``cosine``; both with warm-up) and :func:`make_schedule`;
* :class:`Precision` (``fp32``/``bf16``/``fp16``, channels-last, ``torch.compile``).

Runtime (loaded on first use): :func:`build_optimizer` (the ``torch.optim`` class, for a
model's parameters or stacked tensors), :func:`build_scheduler`,
:func:`stack_optimizer_state` / :func:`unstack_optimizer_state`, and :class:`Amp` (autocast,
the gradient scaler, memory format, compile applied to a step).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sortkd_cache.training._optim import OPTIMIZERS, SGD, AdamW, Optimizer, make_optimizer
from sortkd_cache.training._precision import PRECISIONS, Precision
from sortkd_cache.training._schedule import (
    SCHEDULES,
    Cosine,
    LRSchedule,
    MultiStep,
    make_schedule,
)

if TYPE_CHECKING:
    from sortkd_cache.training._amp import Amp
    from sortkd_cache.training._build import (
        build_optimizer,
        build_scheduler,
        stack_optimizer_state,
        unstack_optimizer_state,
    )

__all__ = [
    "OPTIMIZERS",
    "PRECISIONS",
    "SCHEDULES",
    "SGD",
    "AdamW",
    "Amp",
    "Cosine",
    "LRSchedule",
    "MultiStep",
    "Optimizer",
    "Precision",
    "build_optimizer",
    "build_scheduler",
    "make_optimizer",
    "make_schedule",
    "stack_optimizer_state",
    "unstack_optimizer_state",
]

#: Names whose modules import torch, loaded on first use (configuring needs no torch).
_TORCH_MODULES = {
    "Amp": "_amp",
    "build_optimizer": "_build",
    "build_scheduler": "_build",
    "stack_optimizer_state": "_build",
    "unstack_optimizer_state": "_build",
}


def __getattr__(name: str) -> Any:
    module = _TORCH_MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
