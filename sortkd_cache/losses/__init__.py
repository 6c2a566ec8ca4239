"""Knowledge-distillation losses: pure functions of logits, configuration passed explicitly.

``compute_loss(cfg, student, teacher, target, epoch=...)`` is what a training loop calls; the
per-method functions (``ce_loss``, ``kd_loss``, ``dkd_loss``, ``lskd_loss``, ``ctkd_loss``)
are usable on their own. Teacher logits may be float16 (as stored in a cache): every loss casts
them to the student's compute dtype (float32) first.
"""

from __future__ import annotations

from sortkd_cache.losses._config import LOSS_NAMES, LossConfig
from sortkd_cache.losses._dispatch import LOSSES, LossFn, compute_loss, make_temperature_module
from sortkd_cache.losses.ce import ce_loss
from sortkd_cache.losses.ctkd import (
    CTKDTemperature,
    GradientReversal,
    ctkd_lambda,
    ctkd_loss,
    grad_reverse,
)
from sortkd_cache.losses.dkd import GT_SUPPRESSION, dkd_loss, dkd_warmup_factor
from sortkd_cache.losses.kd import kd_loss
from sortkd_cache.losses.lskd import STANDARDIZE_EPS, lskd_loss, standardize

__all__ = [
    "CTKDTemperature",
    "GT_SUPPRESSION",
    "GradientReversal",
    "LOSSES",
    "LOSS_NAMES",
    "LossConfig",
    "LossFn",
    "STANDARDIZE_EPS",
    "ce_loss",
    "compute_loss",
    "ctkd_lambda",
    "ctkd_loss",
    "dkd_loss",
    "dkd_warmup_factor",
    "grad_reverse",
    "kd_loss",
    "lskd_loss",
    "make_temperature_module",
    "standardize",
]
