"""Curriculum temperature KD (Li et al., AAAI 2023, "Curriculum Temperature for KD"), global.

One learnable scalar ``p`` sets the KD temperature ``T = t_start + t_range * sigmoid(p)``.
The student's optimizer updates ``p`` together with the student, but through a
gradient-reversal layer (GRL): the student descends the KD loss while ``T`` *ascends* it,
which makes the distillation task harder as training goes on. The reversal strength
``lambda`` follows a cosine curriculum from ``lambda_min`` to ``lambda_max``
(``ctkd_lambda``).

The GRL here sits on ``T`` itself rather than on ``p`` (official code: on ``p``, before the
sigmoid); since the GRL only scales the gradient, the gradient reaching ``p`` is identical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sortkd_cache.errors import ConfigError
from sortkd_cache.losses._config import LOSSES, Loss, LossInputs
from sortkd_cache.losses.ce import _check_pair, ce_loss
from sortkd_cache.losses.kd import _kd
from sortkd_cache.options import opt

if TYPE_CHECKING:  # the torch modules (CTKDTemperature, the GRL) live in losses._temperature
    import torch
    from torch import Tensor

    from sortkd_cache.losses._temperature import CTKDTemperature

__all__ = ["CTKD", "ctkd_lambda", "ctkd_loss"]


def ctkd_lambda(epoch: int, cfg: CTKD) -> float:
    """The GRL strength at ``epoch`` (counted from 1, as in the official code).

    ``lambda_min + (lambda_max - lambda_min) * (1 - cos(pi * e / N)) / 2`` with
    ``e = clamp(epoch, 0, N)`` and ``N = ctkd_lambda_epochs``: ``lambda_min`` at epoch 0,
    ``lambda_max`` from epoch ``N`` on. This is the official ``CosineDecay(max_value=0,
    min_value=-1, num_loops=10)`` negated (its sign is the reversal, applied here by the GRL).
    ``N == 0`` gives ``lambda_max`` at once.
    """
    n = cfg.ctkd_lambda_epochs
    if n <= 0:
        return cfg.ctkd_lambda_max
    e = min(max(epoch, 0), n)
    ramp = (1.0 - math.cos(math.pi * e / n)) / 2.0
    return cfg.ctkd_lambda_min + (cfg.ctkd_lambda_max - cfg.ctkd_lambda_min) * ramp


def ctkd_loss(student: Tensor, teacher: Tensor, temperature: Tensor) -> Tensor:
    """KD (as ``kd_loss``) at a tensor temperature, scaled by ``T**2``; a 0-dim tensor.

    ``temperature`` is a one-element tensor, typically ``CTKDTemperature(lambda_)``; gradients
    flow to the student and, through both softmaxes and the ``T**2`` factor, to the temperature.
    It is moved to the student's device and compute dtype.
    """
    import torch

    s, t = _check_pair(student, teacher)
    if not isinstance(temperature, torch.Tensor) or temperature.numel() != 1:
        shape = list(temperature.shape) if isinstance(temperature, torch.Tensor) else temperature
        raise ConfigError(f"ctkd temperature must be a one-element tensor, got {shape!r}")
    temp = temperature.reshape(()).to(device=s.device, dtype=s.dtype)
    return _kd(s, t, temp)


@LOSSES.register("ctkd")
@dataclass(frozen=True)
class CTKD(Loss):
    """``ce_weight * CE + kd_weight * KD(T)``, ``T`` learned through the GRL (global CTKD).

    Defaults: the official ``scripts/run_cifar_distill.sh`` (see ``losses._config``).
    """

    name = "ctkd"
    ce_weight: float = opt(0.1, "weight of the hard-label cross-entropy term", ge=0, le=10000)
    kd_weight: float = opt(0.9, "weight of the distillation term", ge=0, le=10000)
    ctkd_t_start: float = opt(1.0, "CTKD: lowest temperature", gt=0, le=100)
    ctkd_t_range: float = opt(20.0, "CTKD: temperature range above t_start", ge=0, le=100)
    ctkd_init_param: float = opt(
        1.0, "CTKD: initial p of T = t_start + t_range * sigmoid(p)", ge=-10000, le=10000
    )
    ctkd_lambda_max: float = opt(1.0, "CTKD: final gradient-reversal strength", ge=0, le=10000)
    ctkd_lambda_min: float = opt(0.0, "CTKD: initial gradient-reversal strength", ge=0, le=10000)
    ctkd_lambda_epochs: int = opt(10, "CTKD: epochs of the cosine lambda ramp", ge=0, le=10000)

    def terms(self, x: LossInputs) -> dict[str, Tensor]:
        rows = x.teacher_of(self.name)
        if x.temperature_module is None:
            raise ConfigError(
                "loss 'ctkd' needs a temperature module (make_temperature_module(cfg)), got None"
            )
        temperature = x.temperature_module(ctkd_lambda(x.epoch, self))
        t = rows.logits(x.student, x.target, temperature)  # sparse: rebuilt at its value
        return {
            "ce": self.ce_weight * ce_loss(x.student, x.target),
            "kd": self.kd_weight * ctkd_loss(x.student, t, temperature),
        }

    def make_temperature_module(
        self, device: torch.device | str | None = None
    ) -> CTKDTemperature | None:
        from sortkd_cache.losses._temperature import CTKDTemperature

        module = CTKDTemperature(self.ctkd_t_start, self.ctkd_t_range, self.ctkd_init_param)
        return module.to(device) if device is not None else module
