"""How the members take a step on one batch: one after another, or stacked.

A stepper is a list of units; :func:`plan_units` makes them. A :class:`Solo` unit is one
member's step as its solo run takes it (its own random stream, its forward, loss, backward).
A :class:`Stacked` unit is several members of one architecture: one vmapped forward
(:class:`~sortkd_cache.training._stack.StackedForward`), each member's own loss on its slice,
one backward. Either way each member then steps with its own ``torch.optim`` optimizer, the
same class and state as in its solo run: the units differ only in how the forward and
backward are computed. :func:`settle` is that common end of the step: the divergence verdicts
of every member are all-reduced over the ranks in one collective (every rank stops a member at
the same step), then each member's update is kept or put back on the device.

Stacked members are refused where they cannot equal their solo runs: a model that draws random
numbers while training (dropout, stochastic depth) and BatchNorm that must synchronise over
ranks (SyncBatchNorm under torchrun on CUDA). See :func:`check_stackable`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import torch
import torch.distributed as dist

from sortkd_cache.errors import ConfigError
from sortkd_cache.training._member import draws_random_numbers
from sortkd_cache.training._stack import StackedForward, can_stack

if TYPE_CHECKING:
    from sortkd_cache.data import Batch
    from sortkd_cache.training._guard import Snapshot
    from sortkd_cache.training._member import Member
    from sortkd_cache.world import World

__all__ = ["Pending", "Solo", "Stacked", "Unit", "check_stackable", "plan_units", "settle"]

Rows = Mapping[Hashable, Any]
#: a member whose loss went backward: (member, its verdict, its tensors before the forward)
Pending = tuple["Member", torch.Tensor, "Snapshot"]


class Unit(Protocol):
    members: list[Member]

    def forward_backward(self, batch: Batch, rows: Rows, epoch: int) -> list[Pending]:
        """Every member's forward, loss and backward on ``batch`` (``rows``: soft labels by
        source key); no optimizer step yet."""
        ...


class Solo:
    """One member stepped alone, in its own random stream (its solo run's step)."""

    def __init__(self, member: Member) -> None:
        self.members = [member]

    def forward_backward(self, batch: Batch, rows: Rows, epoch: int) -> list[Pending]:
        m = self.members[0]
        with m.random_state():
            saved = m.snapshot()
            out = m.amp.forward(m.net, batch.x)
            loss, sane = m.loss_of(out, batch, rows.get(m.spec.source), epoch)
            m.optimizer.zero_grad(set_to_none=True)
            m.amp.backward(loss)
        return [(m, sane, saved)]


class Stacked:
    """Members of one architecture stepped together (see the module docstring)."""

    def __init__(self, members: Sequence[Member], world: int = 1) -> None:
        self.members = list(members)
        self.forward = StackedForward([m.model for m in self.members])
        self.world = world

    def forward_backward(self, batch: Batch, rows: Rows, epoch: int) -> list[Pending]:
        saved = [m.snapshot() for m in self.members]
        # one forward for all: in the members' precision (a sweep's members share it)
        out = self.members[0].amp.forward(self.forward, batch.x, compiled=False)
        total: torch.Tensor | None = None
        sanes = []
        for i, m in enumerate(self.members):
            loss, sane = m.loss_of(out[i], batch, rows.get(m.spec.source), epoch)
            sanes.append(sane)
            scaled = m.amp.scaled(loss)  # fp16: each member's own loss scale
            total = scaled if total is None else total + scaled
            m.optimizer.zero_grad(set_to_none=True)
        if total is not None:
            total.backward()  # type: ignore[no-untyped-call]
        self.forward.write_back()
        if self.world > 1:
            self._average_gradients()
        return list(zip(self.members, sanes, saved, strict=True))

    def _average_gradients(self) -> None:
        for m in self.members:
            for p in m.params():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad.div_(self.world)


def settle(pending: Sequence[Pending], world: World) -> None:
    """The end of every member's step: the verdicts agreed over the ranks (one all-reduce
    for all members), then each member's optimizer step, kept or put back on the device."""
    if not pending:
        return
    verdicts = torch.stack([sane for _, sane, _ in pending])
    if world.distributed:
        flags = verdicts.to(torch.int32)
        dist.all_reduce(flags, op=dist.ReduceOp.MIN)
        verdicts = flags.bool()
    for i, (m, _, saved) in enumerate(pending):
        m.step(verdicts[i], saved)


def check_stackable(members: Sequence[Member], world: World) -> None:
    """Refuse stacking a member that cannot equal its solo run when stacked (one line
    naming it): one that draws random numbers in training, or SyncBatchNorm."""
    for m in members:
        drawn = draws_random_numbers(m.model)
        if drawn is not None:
            raise ConfigError(
                f"--stack on: member '{m.name}' ({m.spec.student}) draws random numbers while "
                f"training ({drawn}), which a stacked step cannot draw as its solo run does; "
                "use --stack off"
            )
        batchnorm = any(
            isinstance(mod, torch.nn.modules.batchnorm._BatchNorm) for mod in m.model.modules()
        )
        sync = any(isinstance(mod, torch.nn.SyncBatchNorm) for mod in m.model.modules())
        if sync or (batchnorm and world.distributed and m.device.type == "cuda"):
            raise ConfigError(
                f"--stack on: member '{m.name}' ({m.spec.student}) has BatchNorm that "
                "synchronises over ranks (SyncBatchNorm), which a stacked step cannot run; "
                "use --stack off"
            )


def stack_groups(members: Sequence[Member]) -> list[list[Member]]:
    """Members that can step stacked: of one architecture, with no learnt temperature
    (``ctkd`` steps alone), in groups of two or more."""
    groups: dict[str, list[Member]] = {}
    for m in members:
        if m.temperature is None:
            groups.setdefault(m.spec.student, []).append(m)
    return [g for g in groups.values() if len(g) > 1 and can_stack([m.model for m in g])]


def plan_units(
    members: Sequence[Member], stacked: Sequence[Sequence[Member]], world: World
) -> list[Unit]:
    """The units of an epoch: every group in ``stacked`` (as fixed when the run started)
    whose members still train is one :class:`Stacked`; the other members are :class:`Solo`."""
    training = {id(m) for m in members}
    units: list[Unit] = []
    taken: set[int] = set()
    for group in stacked:
        mine = [m for m in group if id(m) in training]
        if mine:
            units.append(Stacked(mine, world.size))
            taken.update(id(m) for m in mine)
    units.extend(Solo(m) for m in members if id(m) not in taken)
    return units
