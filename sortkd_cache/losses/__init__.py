"""Knowledge-distillation losses: each loss is a frozen dataclass of its options, registered.

``make_loss("dkd", {"dkd_beta": 2.0})`` (or ``DKD(dkd_beta=2.0)``) is a loss with its paper
defaults for every option not given; ``compute_loss(loss, student, teacher, target,
epoch=...)`` is what a training loop calls. :data:`LOSSES` is the registry (name -> class) that
the CLI, the recipes and the tests read. The per-method functions (``ce_loss``, ``kd_loss``,
``dkd_loss``, ``lskd_loss``, ``ctkd_loss``) are usable on their own. Teacher logits may be
float16 (as stored in a cache): every loss casts them to the student's compute dtype first.

The teacher is one rows type (:class:`TeacherRows`): dense logits ``[B, C]`` (a tensor, read as
:class:`DenseRows`) or sparse top-K rows (:class:`SparseTeacher`); every loss reads both, with
the same formula (what a sparse row gives exactly: :mod:`._sparse_rows`).

``LossConfig(name, **options)`` is a thin alias of ``make_loss`` kept for the old API.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sortkd_cache.losses._config import (
    LOSSES,
    Loss,
    LossInputs,
    OptionInfo,
    loss_options,
    make_loss,
    option_info,
)
from sortkd_cache.losses._dispatch import (
    LossConfig,
    compute_loss,
    compute_sparse_loss,
    loss_terms,
    make_temperature_module,
)
from sortkd_cache.losses._rows import DenseRows, TeacherRows, teacher_rows
from sortkd_cache.losses.ce import CE, ce_loss
from sortkd_cache.losses.ctkd import CTKD, ctkd_lambda, ctkd_loss
from sortkd_cache.losses.divergence import (
    DIVERGENCE_FACTOR,
    REFERENCE_FLOOR,
    check_divergence,
    divergence_bound,
    divergence_message,
)
from sortkd_cache.losses.dkd import DKD, GT_SUPPRESSION, dkd_loss, dkd_warmup_factor
from sortkd_cache.losses.kd import KD, kd_loss
from sortkd_cache.losses.lskd import LSKD, STANDARDIZE_EPS, lskd_loss, standardize

if TYPE_CHECKING:
    from sortkd_cache.losses._sampled_rows import SampledTeacher
    from sortkd_cache.losses._sparse_kd import ViewTables
    from sortkd_cache.losses._sparse_rows import SparseTeacher
    from sortkd_cache.losses._temperature import CTKDTemperature, GradientReversal, grad_reverse

#: The registered loss names, sorted (what ``--loss`` accepts).
LOSS_NAMES: tuple[str, ...] = tuple(LOSSES.names())

#: Names whose modules need torch at import, loaded on first use (configuring a loss needs none).
_TORCH_MODULES = {
    "CTKDTemperature": "_temperature",
    "GradientReversal": "_temperature",
    "grad_reverse": "_temperature",
    "SampledTeacher": "_sampled_rows",
    "SparseTeacher": "_sparse_rows",
    "ViewTables": "_sparse_kd",
}


def __getattr__(name: str) -> Any:
    """The torch-backed names (CTKD's modules, sparse rows), imported on first use."""
    module = _TORCH_MODULES.get(name)
    if module is not None:
        return getattr(importlib.import_module(f"sortkd_cache.losses.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CE",
    "CTKD",
    "CTKDTemperature",
    "DIVERGENCE_FACTOR",
    "DKD",
    "DenseRows",
    "GT_SUPPRESSION",
    "GradientReversal",
    "KD",
    "LOSSES",
    "LOSS_NAMES",
    "LSKD",
    "Loss",
    "LossConfig",
    "LossInputs",
    "REFERENCE_FLOOR",
    "OptionInfo",
    "STANDARDIZE_EPS",
    "SampledTeacher",
    "SparseTeacher",
    "TeacherRows",
    "ViewTables",
    "ce_loss",
    "check_divergence",
    "compute_loss",
    "compute_sparse_loss",
    "ctkd_lambda",
    "ctkd_loss",
    "divergence_bound",
    "divergence_message",
    "dkd_loss",
    "dkd_warmup_factor",
    "grad_reverse",
    "kd_loss",
    "loss_options",
    "loss_terms",
    "lskd_loss",
    "make_loss",
    "make_temperature_module",
    "option_info",
    "standardize",
    "teacher_rows",
]
