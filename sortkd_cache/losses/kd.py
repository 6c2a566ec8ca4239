"""Hinton knowledge distillation (Hinton, Vinyals & Dean, 2015), as in mdistiller's ``kd_loss``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from sortkd_cache.losses._config import LOSSES, Loss, LossInputs
from sortkd_cache.losses.ce import _check_pair, _check_temperature, ce_loss
from sortkd_cache.options import opt

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["KD", "kd_loss"]


@LOSSES.register("kd")
@dataclass(frozen=True)
class KD(Loss):
    """``ce_weight * CE + kd_weight * KD(temperature)``; defaults: mdistiller ``CFG.KD``."""

    name = "kd"
    temperature: float = opt(4.0, "softmax temperature of the distillation term", gt=0, le=100)
    ce_weight: float = opt(0.1, "weight of the hard-label cross-entropy term", ge=0, le=10000)
    kd_weight: float = opt(0.9, "weight of the distillation term", ge=0, le=10000)
    #: whether the distillation term compares z-scored rows (LSKD)
    standardized: ClassVar[bool] = False

    def terms(self, x: LossInputs) -> dict[str, Tensor]:
        rows, std = x.teacher_of(self.name), self.standardized
        weights = (self.ce_weight, self.kd_weight)
        fused = rows.kd_terms(x.student, x.target, self.temperature, weights, standardized=std)
        if fused is not None:  # sparse rows at a recorded temperature: no dense row built
            return {"ce": fused[0], "kd": fused[1]}
        t = rows.logits(x.student, x.target, self.temperature, standardized=std)
        return {
            "ce": self.ce_weight * ce_loss(x.student, x.target),
            "kd": self.kd_weight * self.distill(x.student, t),
        }

    def distill(self, student: Tensor, teacher: Tensor) -> Tensor:
        """The unweighted distillation term on the teacher logits its rows gave."""
        return kd_loss(student, teacher, self.temperature)


def kd_loss(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """Hinton KD: ``KL(softmax(teacher/T) || softmax(student/T)) * T**2``.

    The KL divergence is summed over classes and averaged over the batch (mdistiller).

    Args:
        student: logits ``[B, C]``; gradients flow to it.
        teacher: logits ``[B, C]``, any float dtype (float16 from a cache is fine); it is cast to
            the student's compute dtype (float32, or float64 for a float64 student) and detached.
        temperature: ``T > 0``.

    Returns:
        A 0-dim tensor; exactly 0 when ``student == teacher``.
    """
    s, t = _check_pair(student, teacher)
    return _kd(s, t, _check_temperature(temperature))


def _kd(student: Tensor, teacher: Tensor, temperature: float | Tensor) -> Tensor:
    """The KD formula on already-checked inputs; ``temperature`` may be a 0-dim tensor."""
    import torch.nn.functional as F

    log_p_s = F.log_softmax(student / temperature, dim=1)
    log_p_t = F.log_softmax(teacher / temperature, dim=1)
    # log_target=True: sum p_t * (log p_t - log p_s), exact zeros where p_t underflows.
    per_row = F.kl_div(log_p_s, log_p_t, reduction="none", log_target=True).sum(dim=1)
    return per_row.mean() * temperature**2
