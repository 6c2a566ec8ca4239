"""One entry point for the trainer: ``compute_loss(cfg, student, teacher, target, epoch=...)``.

Each registered loss returns its *weighted* terms; the total is their sum, so the logged parts
always add up to the total. Terms are named ``"ce"`` (hard-label cross-entropy) and ``"kd"``
(the distillation term of whichever method), so logs of different methods share columns.

* ``ce``:   ``CE`` (no teacher needed)
* ``kd``:   ``ce_weight * CE + kd_weight * KD(temperature)``
* ``dkd``:  ``dkd_ce_weight * CE + min(epoch / dkd_warmup, 1) * DKD(alpha, beta, T)``
* ``lskd``: ``lskd_ce_weight * CE + lskd_kd_weight * LSKD(lskd_temperature)``
* ``ctkd``: ``ce_weight * CE + kd_weight * KD(T)`` with ``T`` from the learnable
  ``CTKDTemperature`` and GRL strength ``ctkd_lambda(epoch, cfg)``

Epochs count from 1 (mdistiller and CTKD both do): epoch 1 is the first epoch of training.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from sortkd_cache.errors import ConfigError
from sortkd_cache.losses._config import LOSS_NAMES, LossConfig
from sortkd_cache.losses.ce import ce_loss
from sortkd_cache.losses.ctkd import CTKDTemperature, ctkd_lambda, ctkd_loss
from sortkd_cache.losses.dkd import dkd_loss, dkd_warmup_factor
from sortkd_cache.losses.kd import kd_loss
from sortkd_cache.losses.lskd import lskd_loss

__all__ = ["LOSSES", "LossFn", "compute_loss", "make_temperature_module"]

#: ``(cfg, student, teacher, target, epoch, temperature_module) -> {term: weighted loss}``.
LossFn = Callable[
    [LossConfig, Tensor, Tensor | None, Tensor, int, CTKDTemperature | None],
    dict[str, Tensor],
]


def _need_teacher(cfg: LossConfig, teacher: Tensor | None) -> Tensor:
    if teacher is None:
        raise ConfigError(f"loss {cfg.name!r} needs teacher logits, got None")
    return teacher


def _ce(
    cfg: LossConfig,
    student: Tensor,
    teacher: Tensor | None,
    target: Tensor,
    epoch: int,
    temperature_module: CTKDTemperature | None,
) -> dict[str, Tensor]:
    return {"ce": ce_loss(student, target)}


def _kd(
    cfg: LossConfig,
    student: Tensor,
    teacher: Tensor | None,
    target: Tensor,
    epoch: int,
    temperature_module: CTKDTemperature | None,
) -> dict[str, Tensor]:
    t = _need_teacher(cfg, teacher)
    return {
        "ce": cfg.ce_weight * ce_loss(student, target),
        "kd": cfg.kd_weight * kd_loss(student, t, cfg.temperature),
    }


def _dkd(
    cfg: LossConfig,
    student: Tensor,
    teacher: Tensor | None,
    target: Tensor,
    epoch: int,
    temperature_module: CTKDTemperature | None,
) -> dict[str, Tensor]:
    t = _need_teacher(cfg, teacher)
    warm = dkd_warmup_factor(epoch, cfg.dkd_warmup)
    dkd = dkd_loss(student, t, target, cfg.dkd_alpha, cfg.dkd_beta, cfg.dkd_temperature)
    return {"ce": cfg.dkd_ce_weight * ce_loss(student, target), "kd": warm * dkd}


def _lskd(
    cfg: LossConfig,
    student: Tensor,
    teacher: Tensor | None,
    target: Tensor,
    epoch: int,
    temperature_module: CTKDTemperature | None,
) -> dict[str, Tensor]:
    t = _need_teacher(cfg, teacher)
    return {
        "ce": cfg.lskd_ce_weight * ce_loss(student, target),
        "kd": cfg.lskd_kd_weight * lskd_loss(student, t, cfg.lskd_temperature),
    }


def _ctkd(
    cfg: LossConfig,
    student: Tensor,
    teacher: Tensor | None,
    target: Tensor,
    epoch: int,
    temperature_module: CTKDTemperature | None,
) -> dict[str, Tensor]:
    t = _need_teacher(cfg, teacher)
    if temperature_module is None:
        raise ConfigError(
            "loss 'ctkd' needs a temperature module (make_temperature_module(cfg)), got None"
        )
    temperature = temperature_module(ctkd_lambda(epoch, cfg))
    return {
        "ce": cfg.ce_weight * ce_loss(student, target),
        "kd": cfg.kd_weight * ctkd_loss(student, t, temperature),
    }


#: The registered losses, by name.
LOSSES: dict[str, LossFn] = {"ce": _ce, "ctkd": _ctkd, "dkd": _dkd, "kd": _kd, "lskd": _lskd}


def compute_loss(
    cfg: LossConfig,
    student: Tensor,
    teacher: Tensor | None,
    target: Tensor,
    *,
    epoch: int,
    temperature_module: CTKDTemperature | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """The total training loss for ``cfg.name`` and its weighted parts as floats.

    Args:
        cfg: the loss configuration.
        student: student logits ``[B, C]`` (gradients flow to them).
        teacher: teacher logits ``[B, C]`` (any float dtype), or None for ``ce``.
        target: int64 labels ``[B]``.
        epoch: the current epoch, counted from 1 (drives the DKD warm-up and CTKD's lambda).
        temperature_module: the ``CTKDTemperature`` for ``ctkd`` (ignored otherwise).

    Returns:
        ``(total, parts)`` where ``total`` is a 0-dim tensor to call ``.backward()`` on and
        ``parts`` maps ``"ce"``/``"kd"`` to floats that sum to ``total``. Reading the parts
        costs one device synchronisation.

    Raises:
        ConfigError: unknown loss name, ``epoch < 1``, a missing teacher for a distillation
        loss, a missing temperature module for ``ctkd``, or malformed logits.
    """
    fn = LOSSES.get(cfg.name)
    if fn is None:
        raise ConfigError(f"unknown loss {cfg.name!r}; known: {', '.join(LOSS_NAMES)}")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
        raise ConfigError(f"epoch must be an integer >= 1 (epochs count from 1), got {epoch!r}")
    parts = fn(cfg, student, teacher, target, epoch, temperature_module)
    terms = list(parts.values())
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    values = torch.stack([term.detach() for term in terms]).tolist()
    return total, dict(zip(parts.keys(), (float(v) for v in values), strict=True))


def make_temperature_module(
    cfg: LossConfig, device: torch.device | str | None = None
) -> CTKDTemperature | None:
    """A fresh ``CTKDTemperature`` from ``cfg`` for ``ctkd`` (on ``device``), else None."""
    if cfg.name != "ctkd":
        return None
    module = CTKDTemperature(cfg.ctkd_t_start, cfg.ctkd_t_range, cfg.ctkd_init_param)
    if device is not None:
        module = module.to(device)
    return module
