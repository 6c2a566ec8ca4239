"""How a sweep steps its members on one batch: one after another, or stacked.

:func:`plan_units` groups the members that train in an epoch into units. A :class:`Single`
is one member's own ``train`` step (bit-identical to its solo run). A :class:`Stack` holds the
members of one architecture as one :class:`~sortkd_cache.stacking.StackedModels`: one vmapped
forward for all of them, each member's own loss on its slice of the output, one backward and
one :class:`~sortkd_cache.stacking.StackedSGD` step with each member's lr, momentum and weight
decay. A stack is built from its members' models and optimizer states at the start of an epoch
and written back into them at its end, so checkpoints, evaluation and the next epoch see
ordinary members (equal to their solo runs to float rounding, not bit for bit).

Stacked: members of one architecture without a learnt temperature (``ctkd`` steps alone).
``--stack auto`` stacks on CUDA and not on the CPU, where batched (grouped) convolutions
measured slower than the same models one after another (BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import torch
import torch.distributed as dist

from sortkd_cache.pipelines.train import Diverged, add_step
from sortkd_cache.stacking import StackedModels, StackedSGD, can_stack

if TYPE_CHECKING:
    from sortkd_cache.data import Batch
    from sortkd_cache.pipelines._sweep_member import MemberRun

__all__ = ["Single", "Stack", "Unit", "plan_units", "stacking_on"]

Rows = Mapping[Any, Any]


class Unit(Protocol):
    members: list[MemberRun]

    def step(self, batch: Batch, rows: Rows, epoch: int, sums: dict[str, dict[str, float]]) -> None:
        """Every member's step on ``batch`` (``rows``: soft labels by member key)."""

    def end_epoch(self) -> None:
        """Write what the unit holds back into its members."""


def stacking_on(mode: str, device: torch.device) -> bool:
    """``--stack``: on, off, or auto (on CUDA only)."""
    return mode == "on" or (mode == "auto" and device.type == "cuda")


class Single:
    """One member stepped alone (its solo run's step)."""

    def __init__(self, member: MemberRun) -> None:
        self.members = [member]

    def step(self, batch: Batch, rows: Rows, epoch: int, sums: dict[str, dict[str, float]]) -> None:
        m = self.members[0]
        m.take_step(batch._replace(soft=rows.get(m.key)), epoch, sums[m.name])

    def end_epoch(self) -> None:
        return None


class Stack:
    """Members of one architecture stepped together (see the module docstring)."""

    def __init__(self, members: Sequence[MemberRun]) -> None:
        self.members = list(members)
        self.models = StackedModels([m.model for m in self.members])
        groups = [m.opt.param_groups[0] for m in self.members]
        self.sgd = StackedSGD(
            self.models,
            lr=[g["lr"] for g in groups],
            momentum=[g["momentum"] for g in groups],
            weight_decay=[g["weight_decay"] for g in groups],
        )
        self.sgd.load_momentum([m.opt for m in self.members])
        self.world = self.members[0].world.size

    def step(self, batch: Batch, rows: Rows, epoch: int, sums: dict[str, dict[str, float]]) -> None:
        out = self.models(batch.x)
        total: torch.Tensor | None = None
        for i, m in enumerate(self.members):
            if m.failed is not None:
                continue
            mine = batch._replace(soft=rows.get(m.key))
            loss, parts = m.loss_terms(out[i], mine, epoch)
            value = float(loss.detach())
            try:
                m.check_loss(value, out[i].detach(), mine, epoch)
            except Diverged as exc:
                m.failed = str(exc)
                continue
            correct = float((out[i].argmax(1) == batch.y).sum())
            add_step(sums[m.name], (value, parts, correct), batch)
            m.step_losses.append(value)
            total = loss if total is None else total + loss
        if total is None:
            return
        self.models.zero_grad()
        total.backward()  # type: ignore[no-untyped-call]
        if self.world > 1:
            self._average_gradients()
        self.sgd.step()

    def _average_gradients(self) -> None:
        for p in self.models.params.values():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad.div_(self.world)

    def end_epoch(self) -> None:
        self.models.write_back([m.model for m in self.members])
        self.sgd.store_momentum([m.opt for m in self.members])
        for m in self.members:  # a step without gradients (a no-op) tells the lr schedule
            m.opt.zero_grad(set_to_none=True)  # that the optimizer stepped this epoch
            m.opt.step()


def plan_units(members: Sequence[MemberRun], stack: bool) -> list[Unit]:
    """The epoch's units: with ``stack``, members of one architecture (no learnt temperature)
    in one :class:`Stack` each (groups of one stay :class:`Single`), else one Single each."""
    units: list[Unit] = []
    groups: dict[str, list[MemberRun]] = {}
    for m in members:
        if stack and m.temperature is None:
            groups.setdefault(m.cfg.student, []).append(m)
        else:
            units.append(Single(m))
    for group in groups.values():
        if len(group) > 1 and can_stack([m.model for m in group]):
            units.append(Stack(group))
        else:
            units.extend(Single(m) for m in group)
    return units
