"""The statistics of the ``sort`` stage: per chunk, then over the kind.

Per chunk: the histogram of the label's rank and the (label, first maximum) pairs of the rows
that sort changes, as small numpy arrays (cheap to return from a Dask worker). Over the kind:
rows changed per view, the rank histogram and the most frequent confusions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TOP_CONFUSIONS", "ChunkStats", "aggregate_stats", "chunk_stats"]

TOP_CONFUSIONS = 20


@dataclass(frozen=True)
class ChunkStats:
    """What one chunk contributes to the kind's statistics (small numpy arrays)."""

    view: int
    ranks: np.ndarray  # histogram of the label's rank (bincount)
    pair_ids: np.ndarray  # label * C + first maximum, for the rows sort changes
    pair_counts: np.ndarray

    @property
    def changed(self) -> int:
        return int(self.ranks[1:].sum())


def chunk_stats(
    rank: np.ndarray, top: np.ndarray, labels: np.ndarray, c: int, view: int
) -> ChunkStats:
    """Rows that sort changes, the label's rank histogram and (label, top) confusions.

    ``rank`` and ``top`` are what the kernel pass yields (:func:`apply_with_stats`): each row's
    label rank and the index of its first totalOrder maximum.
    """
    changed = rank > 0
    pair_ids, pair_counts = np.unique(labels[changed] * c + top[changed], return_counts=True)
    return ChunkStats(view, np.bincount(rank), pair_ids, pair_counts)


def aggregate_stats(parts: list[ChunkStats], num_views: int, n: int, c: int) -> dict[str, Any]:
    """The kind's statistics; confusions by count, ties by (label, top)."""
    changed = [0] * num_views
    ranks = np.zeros(max(len(p.ranks) for p in parts), dtype=np.int64)
    for p in parts:
        changed[p.view] += p.changed
        ranks[: len(p.ranks)] += p.ranks
    ids, where = np.unique(np.concatenate([p.pair_ids for p in parts]), return_inverse=True)
    counts = np.bincount(where, weights=np.concatenate([p.pair_counts for p in parts]))
    best = np.argsort(-counts, kind="stable")[:TOP_CONFUSIONS]
    return {
        "changed_rows": changed,
        "changed_fraction": [k / n for k in changed],
        "rank_histogram": {str(r): int(ranks[r]) for r in np.flatnonzero(ranks)},
        "top_confusions": [
            {"label": int(ids[i] // c), "top": int(ids[i] % c), "count": int(counts[i])}
            for i in best
        ],
    }
