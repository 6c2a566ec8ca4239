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
from typing import Any

import torch
from torch import Tensor, nn

from sortkd_cache.errors import ConfigError
from sortkd_cache.losses._config import LossConfig
from sortkd_cache.losses.ce import _check_pair
from sortkd_cache.losses.kd import _kd

__all__ = ["CTKDTemperature", "GradientReversal", "ctkd_lambda", "ctkd_loss", "grad_reverse"]


class GradientReversal(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by ``-lambda_``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, lambda_: float) -> Tensor:
        ctx.lambda_ = float(lambda_)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        return grad_output * (-ctx.lambda_), None


def grad_reverse(x: Tensor, lambda_: float) -> Tensor:
    """``x`` unchanged; its gradient is multiplied by ``-lambda_`` on the way back."""
    out: Tensor = GradientReversal.apply(x, lambda_)
    return out


class CTKDTemperature(nn.Module):
    """The global learnable temperature ``t_start + t_range * sigmoid(param)``.

    ``param`` is a 0-dim ``nn.Parameter`` initialised to ``init_param``. The default 1.0 is the
    official ``Global_T`` initialisation (``torch.ones``), an initial temperature of
    ``1 + 20 * sigmoid(1) ~= 15.62`` with the default range: a soft start that the reversed
    gradient then moves to where the KD loss is largest. Add this module's parameters to the
    student's optimizer; move it to the training device with ``.to(device)``.
    """

    param: nn.Parameter

    def __init__(self, t_start: float = 1.0, t_range: float = 20.0, init_param: float = 1.0):
        super().__init__()
        if not (math.isfinite(t_start) and t_start > 0):
            raise ConfigError(f"ctkd t_start must be a finite number > 0, got {t_start!r}")
        if not (math.isfinite(t_range) and t_range >= 0):
            raise ConfigError(f"ctkd t_range must be a finite number >= 0, got {t_range!r}")
        if not math.isfinite(init_param):
            raise ConfigError(f"ctkd init_param must be finite, got {init_param!r}")
        self.t_start = float(t_start)
        self.t_range = float(t_range)
        self.param = nn.Parameter(torch.tensor(float(init_param), dtype=torch.float32))

    def forward(self, lambda_: float) -> Tensor:
        """The temperature (0-dim tensor), passed through the GRL with strength ``lambda_``."""
        temperature = self.t_start + self.t_range * torch.sigmoid(self.param)
        return grad_reverse(temperature, lambda_)

    def temperature(self) -> float:
        """The current temperature as a float, for logging (no graph)."""
        with torch.no_grad():
            return float(self.t_start + self.t_range * torch.sigmoid(self.param))

    def extra_repr(self) -> str:
        return f"t_start={self.t_start}, t_range={self.t_range}"


def ctkd_lambda(epoch: int, cfg: LossConfig) -> float:
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
    s, t = _check_pair(student, teacher)
    if not isinstance(temperature, Tensor) or temperature.numel() != 1:
        shape = list(temperature.shape) if isinstance(temperature, Tensor) else temperature
        raise ConfigError(f"ctkd temperature must be a one-element tensor, got {shape!r}")
    temp = temperature.reshape(()).to(device=s.device, dtype=s.dtype)
    return _kd(s, t, temp)
