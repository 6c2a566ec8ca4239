"""The sampled logits layout (``dump --sample S``, ``copy --sample S``): per kind a group of
``ids``, ``counts``, ``values``, ``up`` and ``stats`` (:mod:`sortkd_cache.sparse._sampled`).

    /logits/<kind>/ids       uint8|uint16|int32 [N, V, H+W]  chunks (S, 1, H+W)
    /logits/<kind>/counts    uint8              [N, V, W]    W = min(S, C - H)
    /logits/<kind>/values    logits dtype       [N, V, H+W]  (H = --sample-head, default 0)
    /logits/<kind>/up        as ids             [N, V, W]
    /logits/<kind>/stats     logits dtype       [N, V, P]  (columns in the record)
    /logits/<kind>/fidelity  float64            [B, V, 5]  where the kind was made from dense
                             rows: per (block, view) the sums of KL(sampled || dense) at T0,
                             of the dense and sampled KD gradients' dot product and squared
                             norms (a uniform held student), and the rows
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sortkd_cache.errors import ConfigError, CorruptChunkError, LogitsKindError
from sortkd_cache.sparse import (
    COUNT_DTYPE,
    FIDELITY_SUMS,
    SAMPLED_TAILS,
    SampledRows,
    SampledSpec,
    fidelity_sums,
    relabel,
    sample_rows,
    sampled_problems,
)
from sortkd_cache.store._chunk_scan import chunk_row_problems
from sortkd_cache.store._group_layout import GroupLayout
from sortkd_cache.store._layout import logits_path
from sortkd_cache.store._logits import zarr_get
from sortkd_cache.store._logits_layout import LAYOUTS, LayoutStore, Packed, Rows
from sortkd_cache.store._problem import Problem
from sortkd_cache.store._sparse import GroupArray, expected_sparse, sparse_path
from sortkd_cache.store._sparse_check import check_present

if TYPE_CHECKING:
    from sortkd_cache.sparse import SparseSpec
    from sortkd_cache.store._meta import StoreMeta

__all__ = ["SAMPLED_ARRAYS", "SampledLayout", "SampledLogitsArray"]

SAMPLED_ARRAYS = ("ids", "counts", "values", "up", "stats", "fidelity")
_ROWS = SAMPLED_ARRAYS[:5]


class SampledLogitsArray(GroupArray[SampledSpec]):
    """Read-only sampled rows of one kind: ``read_block(block, view)`` and ``arr[i, v]`` give
    :class:`~sortkd_cache.sparse.SampledRows`; with ``labels`` every chunk is checked as it
    loads (a missing ids chunk by its key, the rows as ``verify`` checks them)."""

    def _get(self, selection: tuple[Any, ...]) -> SampledRows:
        out = []
        for name in _ROWS:
            what = f"{self._where} {sparse_path(self.kind, name)}[{selection!r}]"
            arr = zarr_get(self._arrays[name], selection, what)
            if arr.dtype.kind == "f" and np.isnan(arr).any():
                raise CorruptChunkError(f"{what}: missing chunk (reads as NaN)")
            out.append(arr)
        return SampledRows(*out)

    def __getitem__(self, selection: Any) -> SampledRows:
        return self._get(selection if isinstance(selection, tuple) else (selection,))

    def read_block(self, block: int, view: int) -> SampledRows:
        s = self.chunks[0]
        start, stop = block * s, min(self.shape[0], (block + 1) * s)
        where = f"{self._where} {logits_path(self.kind)}"
        if self._labels is not None:
            check_present(self._arrays["ids"], [(block, view)], where)
        rows = self._get((slice(start, stop), view))
        if self._labels is not None:
            found = sampled_problems(self.spec, rows, self._labels[start:stop])
            if found:
                at = f" chunk (block {block}, view {view})"
                raise CorruptChunkError(f"{where}{at}: {found[0]}")
        return rows


def _rows(rows: Rows) -> SampledRows:
    if not isinstance(rows, SampledRows):
        raise LogitsKindError("sampled rows expected")
    return rows


class SampledLayout(GroupLayout):
    """Per kind a group of sampled ``ids``, ``counts``, ``values``, ``up`` and ``stats``."""

    name = "sample"
    arrays = SAMPLED_ARRAYS[:5]
    word = "sampled"
    training = "sortkd_cache.data._layouts:SAMPLE"
    tails = SAMPLED_TAILS

    def __init__(self, spec: SampledSpec) -> None:
        self.spec: SampledSpec = spec

    @classmethod
    def from_meta(cls, meta: StoreMeta) -> SampledLayout:
        return cls(SampledSpec.from_dict(dict(meta.sparse or {})))

    def describe(self) -> str:
        return self.spec.describe()

    def info_record(self) -> dict[str, Any] | None:
        spec, temps = self.spec, ",".join(f"{t:g}" for t in self.spec.temperatures)
        dense = spec.num_classes * np.dtype(spec.dtype).itemsize
        head = f"top {spec.head} exact + " if spec.head else ""
        summary = (
            f"sampled: {head}{spec.draws} draws of {spec.num_classes} at T0={spec.proposal:g}: "
            f"{spec.bytes_per_row} B/sample-view (dense {dense}), ids {spec.id_dtype}, "
            f"counts {COUNT_DTYPE}, exact normalisers at T={temps}"
        )
        return {**spec.to_dict(), "bytes_per_sample_view": spec.bytes_per_row, "summary": summary}

    def stored_topk(self, topk: int | None, url: str) -> SparseSpec | None:
        if topk is not None:
            raise ConfigError(
                f"--topk {topk} applies to dense or top-K stores; '{url}' is sampled "
                f"({self.describe()}): leave --topk out"
            )
        return None

    def check_loss(self, loss: str) -> None:
        if loss == "ctkd":
            raise ConfigError(
                "--loss ctkd cannot train from a sampled store: its learnt temperature has no "
                "recorded normaliser for the importance weights; use kd, dkd or lskd"
            )

    def reader(self, store: LayoutStore, kind: str) -> SampledLogitsArray:
        return self._arrays(store, kind, store.labels)

    def _arrays(self, store: LayoutStore, kind: str, labels: Any) -> SampledLogitsArray:
        arrays = {n: store.raw_array(sparse_path(kind, n)) for n in _ROWS}
        return SampledLogitsArray(arrays, self.spec, kind, store.url, labels)

    def create_kind(
        self, store: LayoutStore, kind: str, dtype: str, attrs: dict[str, Any], fidelity: bool
    ) -> dict[str, Any]:
        store.create_group(logits_path(kind), attrs)
        out = {}
        for name in SAMPLED_ARRAYS if fidelity else _ROWS:
            path = sparse_path(kind, name)
            shape, chunks, dt = expected_sparse(store.meta, path) or ((), (), "")
            fill: Any = float("nan") if name in ("values", "stats", "fidelity") else 0
            out[path] = store.create_array(path, shape, chunks, dt, fill, overwrite=True)
        return out

    def write_rows(
        self, store: LayoutStore, kind: str, block: int, view: int, rows: Rows, fidelity: Any
    ) -> None:
        start, stop = store.block_bounds(block)
        for name, arr in zip(_ROWS, _rows(rows).arrays(), strict=True):
            store.raw_array(sparse_path(kind, name))[start:stop, view] = arr
        if fidelity is not None:
            store.raw_array(sparse_path(kind, "fidelity"))[block, view] = fidelity

    def encode(
        self, dense: np.ndarray, labels: np.ndarray, *, at: tuple[int, int] = (0, 0)
    ) -> tuple[Rows, np.ndarray | None]:
        """S draws per row, keyed by (seed, sample index, view) from ``at`` = (first sample,
        view), with the chunk's fidelity sums."""
        start, view = at
        index = np.arange(start, start + dense.shape[0], dtype=np.int64)
        rows = sample_rows(dense, labels, self.spec, index, view)
        return rows, fidelity_sums(self.spec, dense, rows)

    def finish_attrs(self, store: LayoutStore, kind: str) -> dict[str, Any]:
        sums = np.asarray(store.raw_array(sparse_path(kind, "fidelity"))[...], np.float64)
        return {"fidelity": fidelity_record(self.spec, sums)}

    def row_problems(self, store: LayoutStore, kinds: Sequence[str]) -> list[Problem]:
        """Per written chunk of each kind: ids in range and unique, counts summing to S, the
        rank order, finite values and stats; one problem per kind at most."""
        return chunk_row_problems(
            store,
            kinds,
            lambda kind: self._arrays(store, kind, None),
            lambda rows, labels: sampled_problems(self.spec, rows, labels),
        )

    def sort_rows(
        self, method: str, rows: Rows, labels: np.ndarray
    ) -> tuple[Rows, np.ndarray, np.ndarray]:
        """The draws moved as the method moves their values (exact; a method without a form
        on sampled rows is refused). The label's rank is 0 where its logit is the maximum and
        1 (for 1 or more) elsewhere; the top class is the highest-ranked drawn class."""
        r = _rows(rows)
        out = relabel(method, r, labels, self.spec)
        label, mx = self.spec.column("label"), self.spec.column("max")
        ranks = (r.stats[:, label] < r.stats[:, mx]).astype(np.int64)
        return out, ranks, r.ids[:, 0].astype(np.int64)

    def kept(self, rows: Rows) -> tuple[np.ndarray, np.ndarray | None]:
        r = _rows(rows)
        return r.values, r.ids.astype(np.int64)

    def pack(self, rows: Rows) -> Packed:
        return _rows(rows).arrays()


def fidelity_record(spec: SampledSpec, sums: np.ndarray) -> dict[str, Any]:
    """The kind's fidelity attribute from the per-(block, view) sums [B, V, 5]."""
    per_view = sums.sum(axis=0)
    views = []
    for kl, dot, dd, ss, n in per_view:
        cos = dot / math.sqrt(dd * ss) if dd > 0 and ss > 0 else 1.0
        angle = math.degrees(math.acos(max(-1.0, min(1.0, cos))))
        views.append({"mean_kl": kl / max(n, 1.0), "grad_angle_deg": angle, "rows": int(n)})
    total = per_view.sum(axis=0)
    cos = total[1] / math.sqrt(total[2] * total[3]) if total[2] > 0 and total[3] > 0 else 1.0
    kl = float(total[0] / max(total[4], 1.0))
    angle = math.degrees(math.acos(max(-1.0, min(1.0, float(cos)))))
    return {
        "summary": (
            f"sampled fidelity: mean KL(sampled || dense) at T0={spec.proposal:g} {kl:.3g}; "
            f"KD gradient angle to dense {angle:.1f} deg (uniform held student, every row)"
        ),
        "layout": "sample",
        "draws": spec.draws,
        **({"head": spec.head} if spec.head else {}),
        "proposal_temperature": spec.proposal,
        "bytes_per_sample_view": spec.bytes_per_row,
        "kl": "KL(sampled || dense) at the proposal temperature",
        "mean_kl": kl,
        "grad_angle_deg": angle,
        "rows": int(total[4]),
        "per_view": views,
        "sums": list(FIDELITY_SUMS),
    }


LAYOUTS.add(SampledLayout.name, SampledLayout)
