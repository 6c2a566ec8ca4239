"""The divergence guard on the device: a flag per member, gated updates, no host read.

:mod:`sortkd_cache.losses.divergence` states the rule (a loss that is not finite, or over ten
times the loss of a uniform prediction, has diverged). :class:`Guard` applies it to each step's
loss as a device tensor: :meth:`Guard.sane` is this step's verdict (before any all-reduce over
ranks), :meth:`Guard.settle` folds the verdict every rank agreed on into the member's
``alive`` flag and records the first failure (the step, and whether this rank's own loss
failed), all with a few tensor ops. An update is kept only where ``alive`` still holds
(:class:`Snapshot`), so a member takes no step from the one that diverged on, whichever rank
saw it. The host learns of it when the epoch's values are read, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sortkd_cache.losses.divergence import DIVERGENCE_FACTOR, REFERENCE_FLOOR

__all__ = ["Failure", "Guard", "Snapshot"]


@dataclass(frozen=True)
class Failure:
    """A member's first failed step, as read on the host."""

    #: the step's loss and the epoch's reference (all-zero logits), on this rank
    loss: float
    reference: float
    #: optimizer steps the member took before it (0-based index of the failed step)
    step: int
    #: whether this rank's own loss failed (else only another rank's did)
    local: bool


class Guard:
    """One member's divergence state on ``device`` (see the module docstring)."""

    #: values of :meth:`record`: alive, failed at (steps), epoch start (steps), local, reference
    WIDTH = 5

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.alive = torch.ones((), dtype=torch.bool, device=device)
        #: steps kept so far, and that count when the epoch started
        self.steps = torch.zeros((), dtype=torch.int64, device=device)
        self.epoch_start = self.steps.clone()
        #: the step of the first failure (-1: none), whether this rank's loss failed there
        self.failed_at = torch.full((), -1, dtype=torch.int64, device=device)
        self.local = torch.zeros((), dtype=torch.bool, device=device)
        self.reference = torch.full((), float("nan"), dtype=torch.float64, device=device)
        self.has_reference = False
        self._bound = self.reference
        self._unbounded = self.alive
        self._mine: torch.Tensor | None = None

    def begin_epoch(self) -> None:
        """A new epoch: a new reference on its first batch; its steps counted from here."""
        self.has_reference = False
        self.epoch_start = self.steps.clone()

    def set_reference(self, reference: torch.Tensor) -> None:
        """The epoch's reference loss (all-zero logits on its first batch)."""
        self.reference = reference.detach().double()
        self._bound = DIVERGENCE_FACTOR * self.reference.clamp(min=REFERENCE_FLOOR)
        self._unbounded = ~torch.isfinite(self._bound)
        self.has_reference = True

    def sane(self, loss: torch.Tensor) -> torch.Tensor:
        """Whether this rank's ``loss`` passes the rule (a bool tensor; nothing is read)."""
        value = loss.detach().double()
        ok = torch.isfinite(value) & ((value <= self._bound) | self._unbounded)
        self._mine = ok
        return ok

    def settle(self, agreed: torch.Tensor) -> torch.Tensor:
        """Fold the verdict all ranks agreed on into ``alive``; the step is kept where the
        returned flag holds (the member was alive and every rank's loss was sane)."""
        if self._mine is None:
            raise RuntimeError("Guard.settle() before Guard.sane()")
        keep = self.alive & agreed
        first = self.alive ^ keep
        self.failed_at = torch.where(first, self.steps, self.failed_at)
        self.local = torch.where(first, ~self._mine, self.local)
        self.steps += keep
        self.alive = keep
        self._mine = None
        return keep

    def record(self) -> torch.Tensor:
        """The guard's state as float64 ``[WIDTH]`` (read once an epoch with the sums)."""
        values = [self.alive, self.failed_at, self.epoch_start, self.local, self.reference]
        return torch.stack([v.double() for v in values])

    @staticmethod
    def failure_of(values: Sequence[float], step_losses: Sequence[float]) -> Failure | None:
        """The :class:`Failure` in :meth:`record`'s values (with the epoch's step losses),
        None while alive."""
        alive, failed_at, epoch_start, local, reference = values
        if alive:
            return None
        at = int(failed_at) - int(epoch_start)
        loss = step_losses[at] if 0 <= at < len(step_losses) else float("nan")
        return Failure(loss, reference, int(failed_at), bool(local))


class Snapshot:
    """A member's tensors as they were before a step, put back unless the step is kept.

    One copy per dtype (the tensors flattened into one buffer), so saving and restoring cost
    a few device ops whatever the number of tensors; a kept step leaves every bit as it is."""

    def __init__(self, tensors: Sequence[torch.Tensor]) -> None:
        self.groups: dict[torch.dtype, list[torch.Tensor]] = {}
        for t in tensors:
            self.groups.setdefault(t.dtype, []).append(t)
        with torch.no_grad():
            self.saved = {d: _flat(ts) for d, ts in self.groups.items()}

    def restore_unless(self, keep: torch.Tensor) -> None:
        """Put the saved values back where ``keep`` is false."""
        with torch.no_grad():
            for dtype, tensors in self.groups.items():
                now = torch.where(keep, _flat(tensors), self.saved[dtype])
                flat = torch.split(now, [t.numel() for t in tensors])
                parts = [p.view_as(t) for p, t in zip(flat, tensors, strict=True)]
                torch._foreach_copy_(tensors, parts)


def _flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1) for t in tensors])
