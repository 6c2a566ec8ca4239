"""Learning-rate schedules as registered, typed options: ``multistep`` and ``cosine``.

The lr changes once per epoch (the schedule steps after each epoch, as it always has). Both
take ``--warmup-epochs W``: epoch ``e`` (counted from 0) below W trains at
``lr * (e + 1) / (W + 1)``, a linear ramp that reaches the full lr at epoch W.

* ``multistep`` (default): the lr is multiplied by ``--lr-decay`` at each of ``--milestones``
  (epoch e trains at ``lr * lr_decay ** (milestones <= e)``). Without warm-up it is
  ``torch.optim.lr_scheduler.MultiStepLR`` itself, so runs are bit-identical to those made
  before these options, and their checkpoints resume.
* ``cosine``: after the warm-up, half a cosine from ``lr`` down to ``--min-lr`` over the
  remaining ``E - W`` epochs: epoch e trains at
  ``min_lr + (lr - min_lr) * (1 + cos(pi * (e - W) / (E - W))) / 2``
  (``CosineAnnealingLR`` with ``T_max = E - W``; the last epoch trains just above min_lr).

A schedule computes its lr as a pure function (:meth:`LRSchedule.lr_at`);
:func:`~sortkd_cache.training.build_scheduler` turns it into a ``torch.optim`` scheduler.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from sortkd_cache._registry import Registry
from sortkd_cache.errors import ConfigError
from sortkd_cache.options import Spell, flag, opt
from sortkd_cache.training._component import Options, make_component

__all__ = ["SCHEDULES", "Cosine", "LRSchedule", "MultiStep", "make_schedule"]


@dataclass(frozen=True)
class LRSchedule(Options):
    """Base of every lr schedule configuration."""

    name: ClassVar[str] = ""

    warmup_epochs: int = opt(
        0, "Epochs of linear lr warm-up: epoch e < W trains at lr * (e+1)/(W+1).",
        ge=0, le=100_000, recipe=True,
    )  # fmt: skip

    def lr_at(self, epoch: int, epochs: int, lr: float) -> float:
        """The lr of epoch ``epoch`` (counted from 0) of ``epochs``, from the base ``lr``."""
        raise NotImplementedError

    def warmup(self, epoch: int) -> float:
        """The warm-up factor of epoch ``epoch``: (e + 1) / (W + 1) below W, else 1."""
        w = self.warmup_epochs
        return (epoch + 1) / (w + 1) if epoch < w else 1.0

    def torch_scheduler(self) -> tuple[str, dict[str, object]] | None:
        """A ``torch.optim.lr_scheduler`` class name and its arguments that compute exactly
        this schedule, or None (then :meth:`lr_at` drives a ``LambdaLR``)."""
        return None


#: Schedule name -> configuration class (what ``--schedule`` accepts).
SCHEDULES: Registry[type[LRSchedule]] = Registry("schedule")


@SCHEDULES.register("multistep")
@dataclass(frozen=True)
class MultiStep(LRSchedule):
    """The lr multiplied by ``lr_decay`` at each milestone (mdistiller's CIFAR-100 setup)."""

    name: ClassVar[str] = "multistep"

    milestones: tuple[int, ...] = opt(
        (150, 180, 210), "multistep: epochs at which the lr is multiplied by --lr-decay.",
        recipe=True,
    )  # fmt: skip
    lr_decay: float = opt(0.1, "multistep: factor of the lr at each milestone.", gt=0, le=100.0,
                          recipe=True)  # fmt: skip

    def check(self, spell: Spell) -> None:
        m = self.milestones
        if any(b <= a for a, b in itertools.pairwise(m)):
            raise ConfigError(f"{spell('milestones')} must be increasing epochs, got {list(m)}")
        if m and m[0] < 1:
            raise ConfigError(f"{spell('milestones')} must be epochs >= 1, got {list(m)}")

    def lr_at(self, epoch: int, epochs: int, lr: float) -> float:
        passed = sum(1 for m in self.milestones if m <= epoch)
        return lr * self.warmup(epoch) * self.lr_decay**passed

    def torch_scheduler(self) -> tuple[str, dict[str, object]] | None:
        if self.warmup_epochs:
            return None
        return "MultiStepLR", {"milestones": list(self.milestones), "gamma": self.lr_decay}


@SCHEDULES.register("cosine")
@dataclass(frozen=True)
class Cosine(LRSchedule):
    """Half a cosine from the lr down to ``min_lr``, after the warm-up."""

    name: ClassVar[str] = "cosine"

    min_lr: float = opt(0.0, "cosine: the lr the cosine decays towards.", ge=0, le=100.0,
                        recipe=True)  # fmt: skip

    def lr_at(self, epoch: int, epochs: int, lr: float) -> float:
        w = self.warmup_epochs
        if epoch < w:
            return lr * self.warmup(epoch)
        t = (epoch - w) / max(1, epochs - w)
        return self.min_lr + (lr - self.min_lr) * (1 + math.cos(math.pi * t)) / 2


def make_schedule(
    values: Mapping[str, object], epochs: int | None = None, spell: Spell = flag
) -> LRSchedule:
    """The schedule named ``values["schedule"]`` (default ``multistep``) with its options
    from ``values`` (flat); with ``epochs``, a warm-up as long as the run is refused."""
    schedule = make_component(SCHEDULES, "schedule", {"schedule": "multistep", **values}, spell)
    if epochs is not None and 0 < epochs <= schedule.warmup_epochs:
        raise ConfigError(
            f"{spell('warmup_epochs')} must be less than {spell('epochs')} {epochs}, "
            f"got {schedule.warmup_epochs}"
        )
    return schedule
