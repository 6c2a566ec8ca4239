"""The top-K logits layout: per kind a group of ``ids``, ``values`` and ``stats``
(:mod:`._sparse`, :mod:`sortkd_cache.sparse`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sortkd_cache import sparse
from sortkd_cache.errors import ConfigError, LogitsKindError
from sortkd_cache.sparse import (
    SparseRows,
    SparseSpec,
    apply_sparse,
    compress,
    label_positions,
    row_problems,
)
from sortkd_cache.store._chunk_scan import chunk_row_problems
from sortkd_cache.store._group_layout import GroupLayout
from sortkd_cache.store._logits_layout import LAYOUTS, LayoutStore, Packed, Rows
from sortkd_cache.store._problem import Problem
from sortkd_cache.store._sparse import (
    SPARSE_ARRAYS,
    SparseLogitsArray,
    create_sparse_arrays,
    fidelity_record,
    sparse_path,
    write_sparse_chunk,
)

if TYPE_CHECKING:
    from sortkd_cache.store._meta import StoreMeta

__all__ = ["SparseLayout", "TopKLayout"]


class SparseLayout(GroupLayout):
    """Per kind a group of top-K ``ids``, ``values`` and ``stats`` (:mod:`._sparse`)."""

    name = "topk"
    arrays = SPARSE_ARRAYS[:3]
    word = "sparse"
    training = "sortkd_cache.data._layouts:TOPK"
    tails = sparse.TAILS

    def __init__(self, spec: SparseSpec) -> None:
        self.spec: SparseSpec = spec

    @classmethod
    def from_meta(cls, meta: StoreMeta) -> SparseLayout:
        return cls(SparseSpec.from_dict(dict(meta.sparse or {})))

    def describe(self) -> str:
        return f"--topk {self.spec.k}"

    def info_record(self) -> dict[str, Any] | None:
        spec, temps = self.spec, ",".join(f"{t:g}" for t in self.spec.temperatures)
        dense = spec.num_classes * np.dtype(spec.dtype).itemsize
        summary = (
            f"top-{spec.k} of {spec.num_classes}: {spec.bytes_per_row} B/sample-view (dense "
            f"{dense}), ids {spec.id_dtype}, exact tail mass at T={temps}"
        )
        return {
            **spec.to_dict(),
            "bytes_per_sample_view": spec.bytes_per_row,
            "summary": summary,
            "rank_cap": spec.k,  # the largest label rank a sort of these rows records ("or more")
        }

    def stored_topk(self, topk: int | None, url: str) -> SparseSpec:
        if topk is not None and topk != self.spec.k:
            raise ConfigError(
                f"--topk {topk} does not match the store's K: '{url}' holds the "
                f"top {self.spec.k}; give --topk {self.spec.k} or leave --topk out"
            )
        return self.spec

    def reader(self, store: LayoutStore, kind: str) -> SparseLogitsArray:
        """Every read checked as it loads (the ids chunk by its key, the rows as verify
        checks them: :class:`~._sparse.SparseLogitsArray` with the store's labels)."""
        return self._arrays(store, kind, store.labels)

    def _arrays(
        self, store: LayoutStore, kind: str, labels: np.ndarray | None
    ) -> SparseLogitsArray:
        arrays = {n: store.raw_array(sparse_path(kind, n)) for n in SPARSE_ARRAYS[:3]}
        return SparseLogitsArray(arrays, self.spec, kind, store.url, labels)

    def create_kind(
        self, store: LayoutStore, kind: str, dtype: str, attrs: dict[str, Any], fidelity: bool
    ) -> dict[str, Any]:
        return create_sparse_arrays(store, kind, attrs, fidelity=fidelity)

    def write_rows(
        self, store: LayoutStore, kind: str, block: int, view: int, rows: Rows, fidelity: Any
    ) -> None:
        bounds = store.block_bounds(block)
        write_sparse_chunk(store.raw_array, kind, block, bounds, view, rows, fidelity)

    def encode(
        self, dense: np.ndarray, labels: np.ndarray, *, at: tuple[int, int] = (0, 0)
    ) -> tuple[Rows, np.ndarray | None]:
        """Truncated to the top K, with the chunk's fidelity sums [T + 2]."""
        rows = compress(dense, labels, self.spec)
        kl, outside, n = sparse.chunk_sums(self.spec, dense, labels, rows)  # torch, when used
        return rows, np.concatenate([kl, [float(outside), float(n)]])

    def finish_attrs(self, store: LayoutStore, kind: str) -> dict[str, Any]:
        fid = store.raw_array(sparse_path(kind, "fidelity"))[...]
        return {"fidelity": fidelity_record(self.spec, np.asarray(fid, dtype=np.float64))}

    def row_problems(self, store: LayoutStore, kinds: Sequence[str]) -> list[Problem]:
        """Per written (block, view) chunk of each kind: the label's logit present and
        consistent, the rank order; one problem per kind at most."""
        return chunk_row_problems(
            store,
            kinds,
            lambda kind: self._arrays(store, kind, None),
            lambda rows, labels: row_problems(self.spec, rows, labels),
        )

    def sort_rows(
        self, method: str, rows: Rows, labels: np.ndarray
    ) -> tuple[Rows, np.ndarray, np.ndarray]:
        """Exact on every kept entry, tails carried over; the label's rank is exact up to
        K - 1, and K stands for K or more (the label outside the top K)."""
        if not isinstance(rows, SparseRows):
            raise LogitsKindError("sparse rows expected")
        k = rows.ids.shape[1]
        pos = label_positions(rows.ids, labels)
        ranks = np.where(pos < 0, k, pos).astype(np.int64)
        out = apply_sparse(method, rows, labels, self.spec.column("label"))
        return out, ranks, rows.ids[:, 0].astype(np.int64)

    def kept(self, rows: Rows) -> tuple[np.ndarray, np.ndarray | None]:
        packed = self.pack(rows)
        return packed[1], packed[0].astype(np.int64)

    def pack(self, rows: Rows) -> Packed:
        if not isinstance(rows, SparseRows):
            raise LogitsKindError("sparse rows expected")
        return rows.ids, rows.values, rows.stats


TopKLayout = SparseLayout
LAYOUTS.add(SparseLayout.name, SparseLayout)
