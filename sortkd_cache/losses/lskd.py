"""KD with logit standardization (Sun et al., CVPR 2024, "Logit Standardization in KD").

Both the student's and the teacher's logits are z-scored per row before the usual KD with a
*base* temperature. The loss therefore ignores each model's logit offset and scale and matches
only the relations between logits.

Defaults (the ``LSKD`` options): the official command line is ``--logit-stand --base-temp 2
--kd-weight 9``, which overrides only the KD temperature and the KD weight of mdistiller's KD
config; the CE weight stays at mdistiller's 0.1. With z-scored logits a KD weight of 0.9 would
make the distillation term ten times weaker than published.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sortkd_cache.errors import ConfigError
from sortkd_cache.losses._config import LOSSES
from sortkd_cache.losses.ce import _check_pair, _check_temperature, _compute
from sortkd_cache.losses.kd import KD, _kd
from sortkd_cache.options import opt

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["LSKD", "STANDARDIZE_EPS", "lskd_loss", "standardize"]

#: Added to the standard deviation, as in the official code (``1e-7 + stdv``).
STANDARDIZE_EPS = 1e-7


def standardize(logits: Tensor) -> Tensor:
    """Z-score each row: ``(z - mean) / (std + 1e-7)`` over the last dimension.

    Faithful to the official ``normalize``: ``std`` is ``torch.std``'s default, the *unbiased*
    estimator (divides by ``C - 1``), and ``eps = 1e-7`` is added to ``std`` (not to the
    variance), so a constant row maps to all zeros. float16/bfloat16 input is computed in
    float32 (float64 stays float64). Needs at least 2 classes (``C - 1 > 0``).
    """
    if logits.dim() < 1 or logits.shape[-1] < 2:
        raise ConfigError(
            f"standardize needs at least 2 classes in the last dimension, got shape "
            f"{list(logits.shape)}"
        )
    x = _compute(logits)
    mean = x.mean(dim=-1, keepdim=True)
    std = x.std(dim=-1, keepdim=True)
    return (x - mean) / (std + STANDARDIZE_EPS)


def lskd_loss(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """``kd_loss(standardize(student), standardize(teacher), temperature)``; a 0-dim tensor.

    Invariant (up to the ``eps``) to adding any per-row constant to, or multiplying each row by
    any positive constant, either input. The teacher is cast and detached like in ``kd_loss``.
    """
    s, t = _check_pair(student, teacher)
    return _kd(standardize(s), standardize(t), _check_temperature(temperature))


@LOSSES.register("lskd")
@dataclass(frozen=True)
class LSKD(KD):
    """``ce_weight * CE + kd_weight * LSKD(temperature)``: KD on z-scored logits (KD + LS)."""

    name = "lskd"
    temperature: float = opt(2.0, "base temperature on the z-scored logits", gt=0, le=100)
    ce_weight: float = opt(0.1, "weight of the hard-label cross-entropy term", ge=0, le=10000)
    kd_weight: float = opt(9.0, "weight of the distillation term", ge=0, le=10000)
    standardized = True

    def distill(self, student: Tensor, teacher: Tensor) -> Tensor:
        """KD of the z-scored student against ``teacher``, already z-scored by its rows."""
        s, t = _check_pair(student, teacher)
        return _kd(standardize(s), t, _check_temperature(self.temperature))
