"""The divergence guard on the device: a flag per member, gated updates, no host read.

:mod:`sortkd_cache.losses.divergence` states the rule (a loss that is not finite, or over ten
times the loss of a uniform prediction, has diverged). :class:`Guard` applies it to each step's
loss as a device tensor: :meth:`Guard.sane` is this step's verdict (before any all-reduce over
ranks), :meth:`Guard.settle` folds the verdict every rank agreed on into the member's
``alive`` flag and records the first failure (its loss, its reference and the step), all with
tensor ops. An update is kept only where ``alive`` still holds (:func:`gate`), so a member
takes no step from the one that diverged on, whichever rank saw it. The host learns of it when
the epoch's values are read, once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sortkd_cache.losses.divergence import DIVERGENCE_FACTOR, REFERENCE_FLOOR

__all__ = ["Failure", "Guard", "gate"]


@dataclass(frozen=True)
class Failure:
    """A member's first failed step, as read on the host."""

    #: the loss and its reference (all-zero logits) on this rank; NaN where this rank's loss
    #: was sane and another rank's was not
    loss: float
    reference: float
    #: optimizer steps the member took before it (0-based index of the failed step)
    step: int
    #: whether this rank's own loss failed (else another rank's did)
    local: bool


class Guard:
    """One member's divergence state on ``device`` (see the module docstring)."""

    #: values of :meth:`record`: alive, local failure, loss, reference, steps taken
    WIDTH = 5

    def __init__(self, device: torch.device) -> None:
        self.alive = torch.ones((), dtype=torch.bool, device=device)
        self.steps = torch.zeros((), dtype=torch.float64, device=device)
        #: the first failure: (this rank's loss failed, loss, reference, steps before it)
        self.failure = torch.full((4,), float("nan"), dtype=torch.float64, device=device)
        self.failure[0] = 0.0
        #: this epoch's reference loss (taken on its first batch), None until then
        self.reference: torch.Tensor | None = None
        self._last: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def sane(self, loss: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Whether this rank's ``loss`` passes the rule (a bool tensor; nothing is read)."""
        value = loss.detach().double()
        bound = DIVERGENCE_FACTOR * reference.detach().double().clamp(min=REFERENCE_FLOOR)
        ok = torch.isfinite(value) & (~torch.isfinite(bound) | (value <= bound))
        self._last = (ok, value, reference.detach().double())
        return ok

    def settle(self, agreed: torch.Tensor) -> torch.Tensor:
        """Fold the verdict all ranks agreed on into ``alive``; the step is kept where the
        returned flag holds (the member was alive and every rank's loss was sane)."""
        if self._last is None:
            raise RuntimeError("Guard.settle() before Guard.sane()")
        mine_ok, value, reference = self._last
        self._last = None
        keep = self.alive & agreed
        first = self.alive & ~agreed
        nan = torch.full_like(value, float("nan"))
        record = torch.stack(
            [
                (~mine_ok).double(),
                torch.where(mine_ok, nan, value),
                torch.where(mine_ok, nan, reference),
                self.steps,
            ]
        )
        self.failure = torch.where(first, record, self.failure)
        self.steps = self.steps + keep.double()
        self.alive = keep
        return keep

    def record(self) -> torch.Tensor:
        """The guard's state as float64 ``[WIDTH]`` (read once an epoch with the sums)."""
        return torch.cat([self.alive.double().reshape(1), self.failure])

    @staticmethod
    def failure_of(values: list[float]) -> Failure | None:
        """The :class:`Failure` in :meth:`record`'s values, None while alive."""
        alive, local, loss, reference, step = values
        if alive:
            return None
        return Failure(loss, reference, int(step), bool(local))


def gate(tensors: list[torch.Tensor], saved: list[torch.Tensor], keep: torch.Tensor) -> None:
    """Put ``saved`` back into ``tensors`` where ``keep`` is false (on the device; a kept
    step leaves every bit as it is)."""
    with torch.no_grad():
        for t, s in zip(tensors, saved, strict=True):
            t.copy_(torch.where(keep, t, s))
