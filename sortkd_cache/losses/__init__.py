"""Knowledge-distillation losses: each loss is a frozen dataclass of its options, registered.

``make_loss("dkd", {"dkd_beta": 2.0})`` (or ``DKD(dkd_beta=2.0)``) is a loss with its paper
defaults for every option not given; ``compute_loss(loss, student, teacher, target,
epoch=...)`` is what a training loop calls. :data:`LOSSES` is the registry (name -> class) that
the CLI, the recipes and the tests read. The per-method functions (``ce_loss``, ``kd_loss``,
``dkd_loss``, ``lskd_loss``, ``ctkd_loss``) are usable on their own. Teacher logits may be
float16 (as stored in a cache): every loss casts them to the student's compute dtype first.

``LossConfig(name, **options)`` is a thin alias of ``make_loss`` kept for the old API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sortkd_cache.losses._config import (
    LOSSES,
    Loss,
    LossInputs,
    OptionInfo,
    loss_options,
    make_loss,
    option,
    option_info,
)
from sortkd_cache.losses._dispatch import LossConfig, compute_loss, make_temperature_module
from sortkd_cache.losses.ce import CE, ce_loss
from sortkd_cache.losses.ctkd import CTKD, ctkd_lambda, ctkd_loss
from sortkd_cache.losses.dkd import DKD, GT_SUPPRESSION, dkd_loss, dkd_warmup_factor
from sortkd_cache.losses.kd import KD, kd_loss
from sortkd_cache.losses.lskd import LSKD, STANDARDIZE_EPS, lskd_loss, standardize

if TYPE_CHECKING:
    from sortkd_cache.losses._temperature import CTKDTemperature, GradientReversal, grad_reverse

#: The registered loss names, sorted (what ``--loss`` accepts).
LOSS_NAMES: tuple[str, ...] = tuple(LOSSES.names())

_TORCH_MODULES = ("CTKDTemperature", "GradientReversal", "grad_reverse")


def __getattr__(name: str) -> Any:
    """The torch modules of CTKD, imported on first use (configuring a loss needs no torch)."""
    if name in _TORCH_MODULES:
        from sortkd_cache.losses import _temperature

        return getattr(_temperature, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CE",
    "CTKD",
    "CTKDTemperature",
    "DKD",
    "GT_SUPPRESSION",
    "GradientReversal",
    "KD",
    "LOSSES",
    "LOSS_NAMES",
    "LSKD",
    "Loss",
    "LossConfig",
    "LossInputs",
    "OptionInfo",
    "STANDARDIZE_EPS",
    "ce_loss",
    "compute_loss",
    "ctkd_lambda",
    "ctkd_loss",
    "dkd_loss",
    "dkd_warmup_factor",
    "grad_reverse",
    "kd_loss",
    "loss_options",
    "lskd_loss",
    "make_loss",
    "make_temperature_module",
    "option",
    "option_info",
    "standardize",
]
