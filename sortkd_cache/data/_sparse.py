"""Sparse soft labels for training: whole views from a store, batches, and the online twin.

* :func:`read_sparse_view` reads one view of a sparse kind (chunk by chunk) as SparseRows.
* :class:`SparseViewSource` holds a view's rows as tensors on the training device and hands
  out :class:`~sortkd_cache.losses.SparseTeacher` batches by sample index.
* :func:`online_sparse_teacher` turns a batch of teacher logits into the same sparse rows the
  cache would hold (cast to the store's dtype, truncated to the top K, then sort/swap), so a
  run with an online teacher and the same truncation matches a cached run step for step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from sortkd_cache.data._prefetch import Prefetcher
from sortkd_cache.errors import ConfigError
from sortkd_cache.losses import SparseTeacher, ViewTables
from sortkd_cache.sparse import SparseRows, SparseSpec, apply_sparse, compress

if TYPE_CHECKING:
    from sortkd_cache.data._batch import Batch
    from sortkd_cache.store import CacheStore

__all__ = [
    "SparseViewSource",
    "online_sparse_teacher",
    "read_sparse_view",
]


def read_sparse_view(store: CacheStore, kind: str, view: int) -> SparseRows:
    """All samples' sparse rows of one view of ``kind``, read one chunk at a time."""
    data = store.sparse_logits(kind)
    parts = [data.read_block(b, view) for b in range(store.num_blocks)]
    return SparseRows(
        np.concatenate([p.ids for p in parts]),
        np.concatenate([p.values for p in parts]),
        np.concatenate([p.stats for p in parts]),
    )


class _ViewReader(Prefetcher[tuple[torch.Tensor, torch.Tensor]]):
    """Reads whole sparse views in background threads (each array's chunks once), with the
    ids widened to int64 and values and stats side by side, off the training loop; ``get``
    gives ``(ids [N, K], packed [N, K + S])`` on the device (``packed``: one gather a batch
    for values and stats)."""

    def __init__(self, store: CacheStore, kind: str, device: torch.device) -> None:
        super().__init__(self._host)
        self._store, self._kind, self._device = store, kind, device

    def _host(self, view: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = read_sparse_view(self._store, self._kind, view)
        ids = torch.from_numpy(rows.ids.astype(np.int64))
        packed = torch.from_numpy(np.concatenate([rows.values, rows.stats], axis=1))
        if self._device.type == "cuda":
            ids, packed = ids.pin_memory(), packed.pin_memory()
        return ids, packed

    def get(self, view: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids, packed = self.take(view)
        dev = self._device
        return ids.to(dev, non_blocking=True), packed.to(dev, non_blocking=True)


class SparseViewSource:
    """A :class:`~sortkd_cache.data.SoftLabels` source for a sparse kind: one whole
    view per epoch on the device (ids, values and stats; K + 7 numbers per sample instead of
    C), the next view read ahead in a background thread; ``rows`` gives a SparseTeacher that
    knows its view (:class:`~sortkd_cache.losses.ViewTables`: the direct KD loss's per-row
    tables are made once per view, not per batch)."""

    def __init__(self, store: CacheStore, kind: str, device: torch.device | str = "cpu") -> None:
        # refuse a dense store or a missing/incomplete kind now
        self.spec: SparseSpec = store.sparse_logits(kind).spec
        dev = torch.device(device)
        self._reader = _ViewReader(store, kind, dev)
        self._labels = torch.from_numpy(np.asarray(store.labels, dtype=np.int64)).to(dev)
        self._view: int | None = None
        self._current: ViewTables | None = None
        self._packed: torch.Tensor | None = None  # values and stats side by side: one gather

    def begin_epoch(self, view: int, local_order: torch.Tensor, next_view: int | None) -> None:
        if view != self._view or self._current is None:
            ids, packed = self._reader.get(view)
            k = self.spec.k
            whole = SparseTeacher(self.spec, ids, packed[:, :k], packed[:, k:])
            self._current, self._packed = ViewTables(whole, self._labels), packed
            self._view = view
        if next_view is not None and next_view != view:
            self._reader.prefetch(next_view)

    def rows(self, batch: Batch) -> SparseTeacher:
        view, packed = self._current, self._packed
        if view is None or packed is None:
            raise ConfigError("SparseViewSource.rows() before begin_epoch()")
        ids = view.teacher.ids
        idx = batch.idx.to(ids.device)
        both, k = packed.index_select(0, idx), self.spec.k
        rows = ids.index_select(0, idx)
        return SparseTeacher(self.spec, rows, both[:, :k], both[:, k:], view, idx)

    def close(self) -> None:
        self._reader.close()
        self._current, self._packed, self._view = None, None, None


def online_sparse_teacher(
    spec: SparseSpec, logits: torch.Tensor, target: torch.Tensor, method: str = "raw"
) -> SparseTeacher:
    """The sparse rows a cache would hold for these teacher logits (float32 ``[B, C]``)."""
    z = logits.detach().float().cpu().numpy()
    with np.errstate(over="ignore"):
        z = z.astype(spec.dtype)
    y = target.detach().cpu().numpy().astype(np.int64)
    rows = compress(z, y, spec)
    if method != "raw":
        rows = apply_sparse(method, rows, y, spec.column("label"))
    return SparseTeacher.from_rows(spec, rows).to(logits.device)
