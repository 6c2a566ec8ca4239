"""A loss: logit regression (Ba & Caruana, "Do Deep Nets Really Need to be Deep?", 2014).

A loss is a frozen dataclass subclassing :class:`sortkd_cache.losses.Loss`: its fields are
its options (``train --mse-weight``, a recipe's ``mse_weight``, ``config.json``), each declared
with :func:`sortkd_cache.options.opt` (default, help, bounds ``ge``/``gt``/``le``), and
``name`` is the name it is registered under (the entry point's name must be the same).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from sortkd_cache.losses import Loss, LossInputs
from sortkd_cache.options import opt

__all__ = ["LogitMSE"]


@dataclass(frozen=True)
class LogitMSE(Loss):
    """``ce_weight * CE + mse_weight * mean((student - teacher)^2)`` over the logits."""

    name = "logit_mse"
    ce_weight: float = opt(0.1, "weight of the hard-label cross-entropy term", ge=0, le=1e4)
    mse_weight: float = opt(1.0, "weight of the logit regression term", ge=0, le=1e4)

    def terms(self, x: LossInputs) -> dict[str, Tensor]:
        # The teacher rows may be dense or sparse (top-K): logits() gives the dense row.
        teacher = x.teacher_of(self.name).logits(x.student, x.target, 1.0)
        teacher = teacher.to(x.student.dtype).detach()
        return {
            "ce": self.ce_weight * F.cross_entropy(x.student, x.target),
            "kd": self.mse_weight * F.mse_loss(x.student, teacher),
        }
