"""CTKD's torch modules: the learnable global temperature and the gradient-reversal layer.

Kept apart from :mod:`sortkd_cache.losses.ctkd` (the loss and its options) so that declaring
and validating a loss configuration, and ``--help``, never import torch.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from sortkd_cache.errors import ConfigError

__all__ = ["CTKDTemperature", "GradientReversal", "grad_reverse"]


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
