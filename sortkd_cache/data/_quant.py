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

from sortkd_cache.data._sampled import SampledViewSource

if TYPE_CHECKING:
    from sortkd_cache.sparse import QuantSpec

__all__ = ["QuantViewSource", "dequantize_tensor", "quant_teacher"]


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


def quant_teacher(spec: QuantSpec, packed: Sequence[torch.Tensor]) -> torch.Tensor:
    """A layout's packed rows (codes, stats) as dense teacher logits [B, C]."""
    codes, stats = packed
    return dequantize_tensor(spec, codes, stats)


class QuantViewSource(SampledViewSource):
    """A :class:`~sortkd_cache.data.SoftLabels` source for a quantized kind: one whole view's
    packed codes per epoch on the device, the next read ahead; ``rows`` gives dense logits."""

    index_first = False

    def teacher(self, packed: Sequence[torch.Tensor]) -> torch.Tensor:
        return quant_teacher(self.spec, packed)
