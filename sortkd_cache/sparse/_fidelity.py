"""How much a sparse kind loses, measured where it is made (``dump --topk``, ``copy --topk``).

Per view: the mean over rows of ``KL(softmax(z / T) || softmax(r / T))`` between the dense row
``z`` and the row ``r`` rebuilt from its sparse form (:func:`~._rebuild.rebuild_dense`), at each
recorded temperature, and the fraction of rows whose label is outside the top K. Both are
accumulated chunk by chunk (:class:`FidelityAccumulator`), so no dense array is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from sortkd_cache.sparse._methods import label_positions
from sortkd_cache.sparse._rebuild import rebuild_dense
from sortkd_cache.sparse._spec import SparseRows, SparseSpec

__all__ = ["FidelityAccumulator", "kl_rows"]


def kl_rows(dense: torch.Tensor, rebuilt: torch.Tensor, temperature: float) -> torch.Tensor:
    """``KL(softmax(dense / T) || softmax(rebuilt / T))`` per row, float64."""
    lp = torch.log_softmax(dense.double() / temperature, dim=1)
    lq = torch.log_softmax(rebuilt.double() / temperature, dim=1)
    return (lp.exp() * (lp - lq)).sum(dim=1).clamp_min(0.0)


def chunk_sums(
    spec: SparseSpec, z: NDArray[Any], y: NDArray[Any], rows: SparseRows
) -> tuple[NDArray[np.float64], int, int]:
    """(sum of KL per recorded temperature, rows with the label outside the top K, rows)."""
    target = torch.from_numpy(np.array(y, dtype=np.int64))
    dense = torch.from_numpy(np.array(z))
    ids = torch.from_numpy(rows.ids.astype(np.int64))
    vals, stats = torch.from_numpy(np.array(rows.values)), torch.from_numpy(np.array(rows.stats))
    sums = []
    for t in spec.temperatures:
        r = rebuild_dense(spec, ids, vals, stats, target, t, dtype=torch.float64)
        sums.append(float(kl_rows(dense, r, t).sum()))
    outside = int((label_positions(rows.ids, y) < 0).sum())
    return np.asarray(sums, dtype=np.float64), outside, int(z.shape[0])


@dataclass
class FidelityAccumulator:
    """Running per-view sums; :meth:`result` is the record written with the kind."""

    spec: SparseSpec
    num_views: int
    kl: NDArray[np.float64] = field(init=False)
    outside: NDArray[np.int64] = field(init=False)
    rows: NDArray[np.int64] = field(init=False)

    def __post_init__(self) -> None:
        self.kl = np.zeros((self.num_views, len(self.spec.temperatures)))
        self.outside = np.zeros(self.num_views, dtype=np.int64)
        self.rows = np.zeros(self.num_views, dtype=np.int64)

    def add(self, view: int, z: NDArray[Any], y: NDArray[Any], rows: SparseRows) -> None:
        kl, outside, n = chunk_sums(self.spec, z, y, rows)
        self.kl[view] += kl
        self.outside[view] += outside
        self.rows[view] += n

    def merge(self, record: dict[str, Any]) -> None:
        """Add the sums of an earlier (interrupted, resumed) run's record."""
        for v, entry in enumerate(record.get("per_view", [])):
            n = int(entry["rows"])
            self.rows[v] += n
            self.outside[v] += int(entry["label_outside"])
            self.kl[v] += (
                np.asarray([entry["mean_kl"][f"{t:g}"] for t in self.spec.temperatures]) * n
            )

    def result(self) -> dict[str, Any]:
        per_view = []
        for v in range(self.num_views):
            n = max(int(self.rows[v]), 1)
            per_view.append(
                {
                    "rows": int(self.rows[v]),
                    "label_outside": int(self.outside[v]),
                    "mean_kl": {
                        f"{t:g}": float(self.kl[v, i] / n)
                        for i, t in enumerate(self.spec.temperatures)
                    },
                    "label_outside_topk": float(self.outside[v] / n),
                }
            )
        total = max(int(self.rows.sum()), 1)
        return {
            "k": self.spec.k,
            "bytes_per_sample_view": self.spec.bytes_per_row,
            "mean_kl": {
                f"{t:g}": float(self.kl[:, i].sum() / total)
                for i, t in enumerate(self.spec.temperatures)
            },
            "label_outside_topk": float(self.outside.sum() / total),
            "per_view": per_view,
        }
