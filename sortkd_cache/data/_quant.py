"""Quantized soft labels for training: the rows read back as dense logits on the device.

A quantized row (:mod:`sortkd_cache.sparse._quant`) names every class, so training reads it
back as a dense ``[B, C]`` float32 row, ``max - step · code``, on the training device (one
unpack of the packed codes and one multiply-add per batch), and every loss applies unchanged,
CTKD's learnt temperature included. :class:`QuantViewSource` keeps a whole view's packed
codes on the device (B bits per class, not 32) and reads the next view ahead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from sortkd_cache.data._packed import PackedViewSource

if TYPE_CHECKING:
    from sortkd_cache.sparse import QuantSpec

__all__ = ["QuantViewSource", "dequantize_tensor", "quant_teacher", "quantize_tensor"]

_DTYPES = {"float16": torch.float16, "float32": torch.float32, "float64": torch.float64}


def dequantize_tensor(spec: QuantSpec, codes: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
    """Packed codes [B, ceil(C·B/8)] (uint8) and stats [B, 2] as logits [B, C] (float32), on
    their device: the same values as :func:`sortkd_cache.sparse.dequantize`."""
    n, dev = codes.shape[0], codes.device
    shifts = torch.arange(8, device=dev, dtype=torch.int16)
    bits = (codes.to(torch.int16).unsqueeze(-1) >> shifts) & 1  # little-endian within a byte
    per = bits.reshape(n, -1)[:, : spec.num_classes * spec.bits]
    weights = 1 << torch.arange(spec.bits, device=dev, dtype=torch.int16)
    k = (per.reshape(n, spec.num_classes, spec.bits) * weights).sum(dim=-1)
    st = stats.to(torch.float32)
    return st[:, :1] - st[:, 1:2] * k.to(torch.float32)


def quantize_tensor(
    spec: QuantSpec, z: torch.Tensor, y: torch.Tensor, method: str = "raw"
) -> torch.Tensor:
    """Dense logits [B, C] (in the store's dtype) quantized as
    :func:`sortkd_cache.sparse.quantize_rows` quantizes them, moved by ``method`` as
    :func:`sortkd_cache.sparse.apply_quant` moves the codes, and read back [B, C] (float32),
    on ``z``'s device: the same float64 arithmetic (IEEE division, round half to even) and the
    same rounding of ``max`` and ``step`` to the dtype, so the same values bit for bit."""
    from sortkd_cache.sorting import get_method

    dt = _DTYPES[spec.dtype]
    zf = z.to(dt).double()
    hi, lo = zf.max(dim=1).values, zf.min(dim=1).values
    mx, step = hi.to(dt), ((hi - lo) / spec.levels).to(dt)
    m64, s64 = mx.double()[:, None], step.double()[:, None]
    k = torch.where(s64 > 0, torch.round((m64 - zf) / s64.clamp(min=1e-300)), 0.0)
    k = k.clamp(0, spec.levels)
    if method != "raw":  # the method on L - k, a larger value for a smaller code
        k = spec.levels - get_method(method)(spec.levels - k, y)
    return mx.float()[:, None] - step.float()[:, None] * k.float()


def quant_teacher(spec: QuantSpec, packed: Sequence[torch.Tensor]) -> torch.Tensor:
    """A layout's packed rows (codes, stats) as dense teacher logits [B, C]."""
    codes, stats = packed
    return dequantize_tensor(spec, codes, stats)


class QuantViewSource(PackedViewSource):
    """A :class:`~sortkd_cache.data.SoftLabels` source for a quantized kind: one whole view's
    packed codes per epoch on the device, the next read ahead; ``rows`` gives dense logits."""

    def teacher(self, packed: Sequence[torch.Tensor]) -> torch.Tensor:
        return quant_teacher(self.spec, packed)
