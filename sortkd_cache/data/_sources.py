"""Which source gives a store's soft labels: whole views (the layout's own source) or streamed
chunks, and ``--topk K`` on a dense kind (:class:`TopKRows`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch

from sortkd_cache.data._layouts import training_of
from sortkd_cache.data._quant import quantize_tensor
from sortkd_cache.data._sampled import sampled_teacher
from sortkd_cache.data._sparse import online_sparse_teacher
from sortkd_cache.data._streamed import StreamedLogits
from sortkd_cache.sparse import relabel, sample_rows

if TYPE_CHECKING:
    from sortkd_cache.data._batch import Batch, SoftLabels
    from sortkd_cache.losses import SampledTeacher, SparseTeacher
    from sortkd_cache.sparse import QuantSpec, SampledSpec, SparseSpec
    from sortkd_cache.store import CacheStore

__all__ = ["QuantizeRows", "SampleRows", "TopKRows", "store_soft_labels"]


def store_soft_labels(
    store: CacheStore,
    kind: str,
    device: torch.device | str = "cpu",
    *,
    stream: bool = False,
) -> SoftLabels:
    """The source for a store's ``kind``: its layout's whole-view source (one whole view per
    epoch: :class:`~sortkd_cache.data.ViewLogits` for dense rows,
    :class:`~sortkd_cache.data.SparseViewSource` for top-K ones, whose batches are
    SparseTeachers for :func:`~sortkd_cache.losses.compute_loss`); with ``stream``,
    :class:`~sortkd_cache.data.StreamedLogits` (any layout, chunk by chunk)."""
    if stream:
        return StreamedLogits(store, kind, device)
    return training_of(store.layout).whole_view(store, kind, device)


class TopKRows:
    """A dense source whose batches are truncated to sparse rows of ``spec`` on the fly, as
    ``copy --topk K`` truncates them (the same function, format and recorded temperatures),
    so a run equals one from that copy. Only for a layout whose ``topk_per_batch`` is set:
    its rows are ``[B, C]`` tensors."""

    def __init__(self, dense: SoftLabels, spec: SparseSpec) -> None:
        self.dense, self.spec = dense, spec

    def begin_epoch(self, view: int, local_order: torch.Tensor, next_view: int | None) -> None:
        self.dense.begin_epoch(view, local_order, next_view)

    def rows(self, batch: Batch) -> SparseTeacher:
        z = cast("torch.Tensor", self.dense.rows(batch))  # topk_per_batch: dense rows
        # the stored dtype's values, bit for bit: compress() is what copy --topk runs on them
        return online_sparse_teacher(self.spec, z, batch.y, "raw")

    def close(self) -> None:
        self.dense.close()


class SampleRows:
    """The raw kind's dense source, each batch sampled as ``copy --sample S`` samples it: the
    same draws (keyed by the store's seed, the sample and the view), then moved by
    ``method`` (a derived kind: ``copy`` makes it from the sampled raw rows the same way), so
    a run equals one from that copy. Only for a layout whose ``topk_per_batch`` is set."""

    def __init__(self, dense: SoftLabels, spec: SampledSpec, method: str = "raw") -> None:
        self.dense, self.spec, self.method, self._view = dense, spec, method, 0

    def begin_epoch(self, view: int, local_order: torch.Tensor, next_view: int | None) -> None:
        self._view = view
        self.dense.begin_epoch(view, local_order, next_view)

    def rows(self, batch: Batch) -> SampledTeacher:
        z = cast("torch.Tensor", self.dense.rows(batch))  # topk_per_batch: dense rows
        zz = z.detach().cpu().numpy().astype(self.spec.dtype, copy=False)
        y, idx = (t.detach().cpu().numpy() for t in (batch.y, batch.idx))
        rows = sample_rows(zz, y, self.spec, idx, self._view)
        if self.method != "raw":
            rows = relabel(self.method, rows, y, self.spec)
        return sampled_teacher(self.spec, [torch.from_numpy(a).to(z.device) for a in rows.arrays()])

    def close(self) -> None:
        self.dense.close()


class QuantizeRows:
    """The raw kind's dense source, each batch quantized as ``copy --quantize B`` quantizes
    it, then moved by ``method`` (a derived kind: ``copy`` makes it from the quantized raw
    rows the same way) and read back, all on the batch's device
    (:func:`~sortkd_cache.data._quant.quantize_tensor`: the same values bit for bit), so a
    run equals one from that copy. Only for a layout whose ``topk_per_batch`` is set."""

    def __init__(self, dense: SoftLabels, spec: QuantSpec, method: str = "raw") -> None:
        self.dense, self.spec, self.method = dense, spec, method

    def begin_epoch(self, view: int, local_order: torch.Tensor, next_view: int | None) -> None:
        self.dense.begin_epoch(view, local_order, next_view)

    def rows(self, batch: Batch) -> torch.Tensor:
        z = cast("torch.Tensor", self.dense.rows(batch))  # topk_per_batch: dense rows
        return quantize_tensor(self.spec, z.detach(), batch.y.to(z.device), self.method)

    def close(self) -> None:
        self.dense.close()
