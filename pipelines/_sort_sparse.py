"""The sort stage on a sparse (top-K) store: one (block, view) chunk at a time.

:func:`sortkd_cache.sparse.apply_sparse` is exact on every kept entry and leaves the tail
columns as they are (see :mod:`sortkd_cache.sparse._methods`). The statistics are those of the
dense stage, as far as a sparse row knows them: the label's rank is exact up to K - 1; rows
whose label is outside the top K are counted under rank K (read: K or more).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sortkd_cache.pipelines._sort_stats import ChunkStats, chunk_stats
from sortkd_cache.store import CacheStore

__all__ = ["sparse_chunk_stats", "sort_sparse_chunk"]


def sparse_chunk_stats(rows: Any, labels: np.ndarray, c: int, view: int) -> ChunkStats:
    """Rows that sort changes, the label's rank histogram (K: K or more) and confusions."""
    from sortkd_cache.sparse import label_positions

    k = rows.ids.shape[1]
    pos = label_positions(rows.ids, labels)
    ranks = np.where(pos < 0, k, pos).astype(np.int64)
    return chunk_stats(ranks, rows.ids[:, 0].astype(np.int64), labels, c, view)


def sort_sparse_chunk(
    source: CacheStore, target: CacheStore | None, method: str, block: int, view: int
) -> ChunkStats:
    """Statistics of one chunk; with ``target``, also write its ``method`` result there."""
    from sortkd_cache.sparse import apply_sparse

    start, stop = source.block_bounds(block)
    rows = source.sparse_logits("raw").read_block(block, view)
    labels = source.labels[start:stop]
    stats = sparse_chunk_stats(rows, labels, source.num_classes, view)
    if target is not None:
        out = apply_sparse(method, rows, labels, source.sparse_spec.column("label"))
        target.write_chunk(method, block, view, out, count=stats.changed)
    return stats
