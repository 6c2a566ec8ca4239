"""Sampled soft labels for training: one whole view of a sampled kind on the device.

:class:`SampledViewSource` (a :class:`~sortkd_cache.data._packed.PackedViewSource`) keeps a
view's ``ids``, ``counts``, ``values``, ``up`` and ``stats`` on the training device and hands
out :class:`~sortkd_cache.losses.SampledTeacher` batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from sortkd_cache.data._packed import PackedViewSource
from sortkd_cache.losses import SampledTeacher

if TYPE_CHECKING:
    from sortkd_cache.sparse import SampledSpec

__all__ = ["SampledViewSource", "sampled_teacher"]


def sampled_teacher(spec: SampledSpec, packed: Sequence[torch.Tensor]) -> SampledTeacher:
    """A layout's packed rows (ids, counts, values, up, stats) as the losses read them."""
    ids, counts, values, _up, stats = packed
    return SampledTeacher(spec, ids.to(torch.int64), counts, values, stats)


class SampledViewSource(PackedViewSource):
    """A :class:`~sortkd_cache.data.SoftLabels` source for a sampled kind: one whole view per
    epoch on the device, the next read ahead; ``rows`` gives SampledTeacher batches."""

    index_first = True

    def teacher(self, packed: Sequence[torch.Tensor]) -> SampledTeacher:
        spec: SampledSpec = self.spec
        return sampled_teacher(spec, packed)
