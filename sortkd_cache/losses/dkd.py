"""Decoupled knowledge distillation (Zhao et al., CVPR 2022), as in mdistiller's ``dkd_loss``.

``DKD = alpha * TCKD + beta * NCKD`` where, at temperature ``T`` and per sample,

* TCKD is the KL divergence between the teacher's and the student's *binary* distributions
  ``[p_gt, 1 - p_gt]`` (probability of the target class vs. all the others), and
* NCKD is the KL divergence between their distributions over the non-target classes only,
  obtained as in mdistiller by subtracting 1000 from the target's scaled logit before the
  softmax (``logits / T - 1000 * gt_mask``),

each multiplied by ``T**2`` and averaged over the batch.

Numerics: both inputs are cast to float32 (float64 stays float64) *before* scaling and masking,
so a float16 teacher never meets the ``- 1000`` in float16. The binary log-probabilities of the
student are computed with ``logsumexp`` instead of mdistiller's ``log(sum of probabilities)``,
and the KL terms take both sides as log-probabilities; the value is the same, but it stays
finite when the target's probability underflows and is exactly 0 when student == teacher.
Like mdistiller's, the ``- 1000`` suppression assumes the target's scaled logit does not exceed
the other classes' by about 900 or more (logits / T); real logits are far from that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sortkd_cache.errors import ConfigError
from sortkd_cache.losses._config import LOSSES, Loss, LossInputs
from sortkd_cache.losses.ce import _check_pair, _check_student_target, _check_temperature, ce_loss
from sortkd_cache.options import opt

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["DKD", "GT_SUPPRESSION", "dkd_loss", "dkd_warmup_factor"]

#: Subtracted from the target's scaled logit for NCKD (mdistiller's constant).
GT_SUPPRESSION = 1000.0


def dkd_loss(
    student: Tensor,
    teacher: Tensor,
    target: Tensor,
    alpha: float,
    beta: float,
    temperature: float,
) -> Tensor:
    """``alpha * TCKD + beta * NCKD`` (see the module docstring); a 0-dim tensor.

    Args:
        student: logits ``[B, C]``; gradients flow to it.
        teacher: logits ``[B, C]``, any float dtype; cast and detached like in ``kd_loss``.
        target: int64 labels ``[B]``.
        alpha: TCKD weight. beta: NCKD weight. temperature: ``T > 0``.
    """
    import torch
    import torch.nn.functional as F

    s, t = _check_pair(student, teacher)
    _check_student_target(student, target)
    temp = _check_temperature(temperature)
    if s.shape[1] < 2:
        raise ConfigError(f"DKD needs at least 2 classes, got {s.shape[1]}")

    gt_mask = torch.zeros_like(s, dtype=torch.bool).scatter_(1, target.unsqueeze(1), True)
    s_t = s / temp
    t_t = t / temp

    # TCKD: binary distributions [target, all others].
    log_p_s = _binary_log_probs(s_t, gt_mask)
    log_p_t = _binary_log_probs(t_t, gt_mask)
    tckd = F.kl_div(log_p_s, log_p_t, reduction="none", log_target=True).sum(dim=1).mean()

    # NCKD: distributions over the non-target classes (target suppressed by -1000).
    suppress = GT_SUPPRESSION * gt_mask.to(s.dtype)
    log_q_s = F.log_softmax(s_t - suppress, dim=1)
    log_q_t = F.log_softmax(t_t - suppress, dim=1)
    nckd = F.kl_div(log_q_s, log_q_t, reduction="none", log_target=True).sum(dim=1).mean()

    return (alpha * tckd + beta * nckd) * temp**2


def dkd_warmup_factor(epoch: int, warmup: int) -> float:
    """mdistiller's DKD warm-up ``min(epoch / warmup, 1)``; epochs count from 1.

    So the first epoch trains with ``1 / warmup`` of the DKD term and epoch ``warmup`` onward
    with all of it. ``warmup == 0`` means no warm-up (factor 1).
    """
    if warmup <= 0:
        return 1.0
    return min(max(epoch, 0) / warmup, 1.0)


def _binary_log_probs(scaled: Tensor, gt_mask: Tensor) -> Tensor:
    """``[log p_gt, log(1 - p_gt)]`` per row, ``[B, 2]``, via logsumexp."""
    import torch

    neg_inf = torch.tensor(float("-inf"), dtype=scaled.dtype, device=scaled.device)
    log_z = torch.logsumexp(scaled, dim=1, keepdim=True)
    log_gt = torch.logsumexp(torch.where(gt_mask, scaled, neg_inf), dim=1, keepdim=True)
    log_other = torch.logsumexp(torch.where(gt_mask, neg_inf, scaled), dim=1, keepdim=True)
    return torch.cat([log_gt, log_other], dim=1) - log_z


@LOSSES.register("dkd")
@dataclass(frozen=True)
class DKD(Loss):
    """``ce_weight * CE + min(epoch / dkd_warmup, 1) * DKD(dkd_alpha, dkd_beta, temperature)``.

    Defaults: mdistiller ``CFG.DKD`` (beta 8 is its ResNet32x4 -> ResNet8x4 value; other pairs
    use other values). Epochs count from 1, so the first epoch has ``1 / dkd_warmup`` of DKD.
    """

    name = "dkd"
    dkd_alpha: float = opt(1.0, "DKD: weight of the target-class term (TCKD)", ge=0, le=10000)
    dkd_beta: float = opt(8.0, "DKD: weight of the non-target-class term (NCKD)", ge=0, le=10000)
    temperature: float = opt(4.0, "softmax temperature of the distillation term", gt=0, le=100)
    dkd_warmup: int = opt(
        20, "DKD: epochs of linear warm-up of the DKD term (0: none)", ge=0, le=10000
    )
    ce_weight: float = opt(1.0, "weight of the hard-label cross-entropy term", ge=0, le=10000)

    def terms(self, x: LossInputs) -> dict[str, Tensor]:
        rows, a, b, temp = x.teacher_of(self.name), self.dkd_alpha, self.dkd_beta, self.temperature
        warm = dkd_warmup_factor(x.epoch, self.dkd_warmup)
        dkd = rows.dkd_terms(x.student, x.target, a, b, temp)  # sampled rows: estimated
        if dkd is None:
            t = rows.logits(x.student, x.target, temp)
            dkd = dkd_loss(x.student, t, x.target, a, b, temp)
        return {"ce": self.ce_weight * ce_loss(x.student, x.target), "kd": warm * dkd}
