"""One entry point for a training loop: ``compute_loss(loss, student, teacher, target, epoch=)``.

Each registered loss returns its *weighted* terms; the total is their sum, so the logged parts
always add up to the total. Terms are named ``"ce"`` (hard-label cross-entropy) and ``"kd"``
(the distillation term of whichever method), so logs of different methods share columns.
Epochs count from 1 (mdistiller and CTKD both do): epoch 1 is the first epoch of training.
The teacher is dense logits or sparse rows: every loss reads both (:mod:`._rows`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sortkd_cache.errors import ConfigError
from sortkd_cache.losses._config import Loss, LossInputs, make_loss
from sortkd_cache.losses._rows import TeacherRows, teacher_rows

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from sortkd_cache.losses._temperature import CTKDTemperature

__all__ = [
    "LossConfig",
    "compute_loss",
    "compute_sparse_loss",
    "loss_terms",
    "make_temperature_module",
]


def LossConfig(name: str = "kd", **options: Any) -> Loss:
    """Thin alias kept for the old API: ``make_loss(name, options)``.

    It used to be one flat dataclass of every loss's fields; each loss now owns its own config
    (``KD``, ``DKD``, ``LSKD``, ``CTKD``, ``CE``), and an option the loss does not take is an
    error instead of being ignored.
    """
    return make_loss(name, options)


def compute_loss(
    cfg: Loss,
    student: Tensor,
    teacher: Tensor | TeacherRows | None,
    target: Tensor,
    *,
    epoch: int,
    temperature_module: CTKDTemperature | None = None,
    tail: str | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """The total training loss of ``cfg`` and its weighted parts as floats.

    Args:
        cfg: the loss (``make_loss("kd")``, ``KD(temperature=2)``, ...).
        student: student logits ``[B, C]`` (gradients flow to them).
        teacher: teacher logits ``[B, C]`` (any float dtype), sparse rows
            (:class:`~sortkd_cache.losses.SparseTeacher`), or None for ``ce``.
        target: int64 labels ``[B]``.
        epoch: the current epoch, counted from 1 (drives the DKD warm-up and CTKD's lambda).
        temperature_module: the ``CTKDTemperature`` for ``ctkd`` (ignored otherwise).
        tail: sparse rows' tail handling, ``"uniform"`` or ``"bucket"`` (None: the rows'
            own, by default uniform); refused for dense logits.

    Returns:
        ``(total, parts)`` where ``total`` is a 0-dim tensor to call ``.backward()`` on and
        ``parts`` maps ``"ce"``/``"kd"`` to floats that sum to ``total``. Reading the parts
        costs one device synchronisation.

    Raises:
        ConfigError: not a loss, ``epoch < 1``, a missing teacher for a distillation loss, a
        missing temperature module for ``ctkd``, or malformed logits.
    """
    import torch

    total, parts = loss_terms(
        cfg, student, teacher, target, epoch=epoch, temperature_module=temperature_module,
        tail=tail,
    )  # fmt: skip
    values = torch.stack([term.detach() for term in parts.values()]).tolist()
    return total, dict(zip(parts.keys(), (float(v) for v in values), strict=True))


def loss_terms(
    cfg: Loss,
    student: Tensor,
    teacher: Tensor | TeacherRows | None,
    target: Tensor,
    *,
    epoch: int,
    temperature_module: CTKDTemperature | None = None,
    tail: str | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """:func:`compute_loss` with its parts left on the device (0-dim tensors, detached
    or not): what a training step that reads nothing on the host calls."""
    if not isinstance(cfg, Loss):
        raise ConfigError(f"compute_loss needs a loss (make_loss(name)), got {cfg!r}")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
        raise ConfigError(f"epoch must be an integer >= 1 (epochs count from 1), got {epoch!r}")
    rows = teacher_rows(teacher, tail)
    parts = cfg.terms(LossInputs(student, rows, target, epoch, temperature_module))
    terms = list(parts.values())
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total, parts


def compute_sparse_loss(
    cfg: Loss,
    student: Tensor,
    teacher: TeacherRows | None,
    target: Tensor,
    *,
    epoch: int,
    temperature_module: CTKDTemperature | None = None,
    tail: str | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """The old name of :func:`compute_loss` for sparse rows (which it now takes itself)."""
    return compute_loss(
        cfg, student, teacher, target, epoch=epoch, temperature_module=temperature_module,
        tail=tail,
    )  # fmt: skip


def make_temperature_module(
    cfg: Loss, device: torch.device | str | None = None
) -> CTKDTemperature | None:
    """A fresh learnable temperature for ``cfg`` (``ctkd``) on ``device``, else None."""
    return cfg.make_temperature_module(device)
