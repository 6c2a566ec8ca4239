"""Training: the engine (members, a stepper, the epoch loop) and its configuration.

``train`` and ``sweep`` run one engine; ``train`` is a sweep of one member (docs/training.md):

* :class:`Member` (:mod:`._member`): one student (model, optimizer, schedule, loss,
  temperature module, random state, status), built whole from its :class:`MemberSpec`;
* the stepper (:mod:`._stepper`): :class:`Solo` (one after another) or :class:`Stacked`
  (``torch.func``, per architecture); each member steps with its own ``torch.optim``
  optimizer, and the divergence guard (:mod:`._guard`) keeps or undoes the step on the
  device, agreed over every rank (:func:`settle`);
* the epoch loop (:mod:`._loop`): :func:`train_epoch` over shared batches and soft-label
  sources, no host read in the step; :func:`read_epoch` reads every member's epoch once.

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
    from sortkd_cache.training._guard import Failure, Guard, Snapshot
    from sortkd_cache.training._loop import read_epoch, train_epoch
    from sortkd_cache.training._member import (
        EpochStats,
        EpochSums,
        Member,
        MemberSpec,
        OptimizerFactory,
        ScheduleFactory,
        draws_random_numbers,
    )
    from sortkd_cache.training._stack import StackedForward, can_stack
    from sortkd_cache.training._stepper import (
        Solo,
        Stacked,
        Unit,
        check_stackable,
        plan_units,
        settle,
        stack_groups,
    )

__all__ = [
    "AdamW",
    "Amp",
    "Cosine",
    "EpochStats",
    "EpochSums",
    "Failure",
    "Guard",
    "LRSchedule",
    "Member",
    "MemberSpec",
    "MultiStep",
    "OPTIMIZERS",
    "Optimizer",
    "OptimizerFactory",
    "PRECISIONS",
    "Precision",
    "SCHEDULES",
    "SGD",
    "ScheduleFactory",
    "Snapshot",
    "Solo",
    "Stacked",
    "StackedForward",
    "Unit",
    "build_optimizer",
    "build_scheduler",
    "can_stack",
    "check_stackable",
    "draws_random_numbers",
    "make_optimizer",
    "make_schedule",
    "plan_units",
    "read_epoch",
    "settle",
    "stack_groups",
    "stack_optimizer_state",
    "train_epoch",
    "unstack_optimizer_state",
]

#: Names whose modules import torch, loaded on first use (configuring needs no torch).
_TORCH_MODULES = {
    "Amp": "_amp",
    "build_optimizer": "_build",
    "build_scheduler": "_build",
    "stack_optimizer_state": "_build",
    "unstack_optimizer_state": "_build",
    "Failure": "_guard",
    "Guard": "_guard",
    "Snapshot": "_guard",
    "read_epoch": "_loop",
    "train_epoch": "_loop",
    "EpochStats": "_member",
    "EpochSums": "_member",
    "Member": "_member",
    "MemberSpec": "_member",
    "OptimizerFactory": "_member",
    "ScheduleFactory": "_member",
    "draws_random_numbers": "_member",
    "StackedForward": "_stack",
    "can_stack": "_stack",
    "Solo": "_stepper",
    "Stacked": "_stepper",
    "Unit": "_stepper",
    "check_stackable": "_stepper",
    "plan_units": "_stepper",
    "settle": "_stepper",
    "stack_groups": "_stepper",
}


def __getattr__(name: str) -> Any:
    module = _TORCH_MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
