"""The quantized logits layout (``dump --quantize B``, ``copy --quantize B``): per kind a group
of ``codes`` and ``stats`` (:mod:`sortkd_cache.sparse._quant`).

    /logits/<kind>/codes     uint8        [N, V, ceil(C·B/8)]  chunks (S, 1, ceil(C·B/8))
    /logits/<kind>/stats     logits dtype [N, V, 2]            (max, step)
    /logits/<kind>/fidelity  float64      [B, V, T+2]  where the kind was made from dense
                             rows: per (block, view) the sums of KL(dense || quantized) at each
                             recorded T, the largest |logit error|, and the rows
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sortkd_cache.errors import ConfigError, CorruptChunkError, LogitsKindError
from sortkd_cache.sparse import (
    QuantRows,
    QuantSpec,
    apply_quant,
    dequantize,
    quant_fidelity,
    quant_problems,
    quantize_rows,
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

__all__ = ["QUANT_ARRAYS", "QuantLayout", "QuantLogitsArray"]

QUANT_ARRAYS = ("codes", "stats", "fidelity")
_ROWS = QUANT_ARRAYS[:2]


class QuantLogitsArray(GroupArray[QuantSpec]):
    """Read-only quantized rows of one kind: ``read_block(block, view)`` and ``arr[i, v]`` give
    :class:`~sortkd_cache.sparse.QuantRows`; with ``labels`` every chunk is checked as it loads
    (a missing codes chunk by its key, the rows as ``verify`` checks them)."""

    def _get(self, selection: tuple[Any, ...]) -> QuantRows:
        out = []
        for name in _ROWS:
            what = f"{self._where} {sparse_path(self.kind, name)}[{selection!r}]"
            arr = zarr_get(self._arrays[name], selection, what)
            if arr.dtype.kind == "f" and np.isnan(arr).any():
                raise CorruptChunkError(f"{what}: missing chunk (reads as NaN)")
            out.append(arr)
        return QuantRows(*out)

    def __getitem__(self, selection: Any) -> QuantRows:
        return self._get(selection if isinstance(selection, tuple) else (selection,))

    def read_block(self, block: int, view: int) -> QuantRows:
        s = self.chunks[0]
        start, stop = block * s, min(self.shape[0], (block + 1) * s)
        where = f"{self._where} {logits_path(self.kind)}"
        if self._labels is not None:
            check_present(self._arrays["codes"], [(block, view)], where)
        rows = self._get((slice(start, stop), view))
        if self._labels is not None:
            found = quant_problems(self.spec, rows, self._labels[start:stop])
            if found:
                at = f" chunk (block {block}, view {view})"
                raise CorruptChunkError(f"{where}{at}: {found[0]}")
        return rows


def _rows(rows: Rows) -> QuantRows:
    if not isinstance(rows, QuantRows):
        raise LogitsKindError("quantized rows expected")
    return rows


class QuantLayout(GroupLayout):
    """Per kind a group of quantized ``codes`` and ``stats`` (every class, B bits each)."""

    name = "quant"
    arrays = _ROWS
    word = "quantized"
    training = "sortkd_cache.data._layouts:QUANT"

    def __init__(self, spec: QuantSpec) -> None:
        self.spec: QuantSpec = spec

    @classmethod
    def from_meta(cls, meta: StoreMeta) -> QuantLayout:
        return cls(QuantSpec.from_dict(dict(meta.sparse or {})))

    def describe(self) -> str:
        return self.spec.describe()

    def info_record(self) -> dict[str, Any] | None:
        spec = self.spec
        dense = spec.num_classes * np.dtype(spec.dtype).itemsize
        summary = (
            f"quantized: every one of {spec.num_classes} classes in {spec.bits} bits "
            f"({spec.levels + 1} levels from the row's max to its min): "
            f"{spec.bytes_per_row} B/sample-view (dense {dense}), max and step in {spec.dtype}"
        )
        return {**spec.to_dict(), "bytes_per_sample_view": spec.bytes_per_row, "summary": summary}

    def stored_topk(self, topk: int | None, url: str) -> SparseSpec | None:
        if topk is not None:
            raise ConfigError(
                f"--topk {topk} applies to dense or top-K stores; '{url}' is quantized "
                f"({self.describe()}): leave --topk out"
            )
        return None

    def reader(self, store: LayoutStore, kind: str) -> QuantLogitsArray:
        return self._arrays(store, kind, store.labels)

    def _arrays(self, store: LayoutStore, kind: str, labels: Any) -> QuantLogitsArray:
        arrays = {n: store.raw_array(sparse_path(kind, n)) for n in _ROWS}
        return QuantLogitsArray(arrays, self.spec, kind, store.url, labels)

    def create_kind(
        self, store: LayoutStore, kind: str, dtype: str, attrs: dict[str, Any], fidelity: bool
    ) -> dict[str, Any]:
        store.create_group(logits_path(kind), attrs)
        out = {}
        for name in QUANT_ARRAYS if fidelity else _ROWS:
            path = sparse_path(kind, name)
            shape, chunks, dt = expected_sparse(store.meta, path) or ((), (), "")
            fill: Any = 0 if name == "codes" else float("nan")
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
        rows = quantize_rows(dense, self.spec)
        return rows, quant_fidelity(self.spec, dense, rows)

    def finish_attrs(self, store: LayoutStore, kind: str) -> dict[str, Any]:
        sums = np.asarray(store.raw_array(sparse_path(kind, "fidelity"))[...], np.float64)
        return {"fidelity": fidelity_record(self.spec, sums)}

    def row_problems(self, store: LayoutStore, kinds: Sequence[str]) -> list[Problem]:
        """Per written chunk of each kind: finite stats, a step >= 0, zero padding bits."""
        return chunk_row_problems(
            store,
            kinds,
            lambda kind: self._arrays(store, kind, None),
            lambda rows, labels: quant_problems(self.spec, rows, labels),
            first="codes",
        )

    def sort_rows(
        self, method: str, rows: Rows, labels: np.ndarray
    ) -> tuple[Rows, np.ndarray, np.ndarray]:
        """The codes moved as the method moves the values they read back as (exact on the
        stored rows; :func:`~sortkd_cache.sparse.apply_quant`)."""
        return apply_quant(method, _rows(rows), labels, self.spec)

    def kept(self, rows: Rows) -> tuple[np.ndarray, np.ndarray | None]:
        return dequantize(_rows(rows), self.spec), None

    def pack(self, rows: Rows) -> Packed:
        return _rows(rows).arrays()


def fidelity_record(spec: QuantSpec, sums: np.ndarray) -> dict[str, Any]:
    """The kind's fidelity attribute from the per-(block, view) sums [B, V, T + 2]."""
    per_view = sums.sum(axis=0)
    worst = sums[..., -2].max(axis=0) if sums.size else np.zeros(0)
    temps = spec.temperatures
    views = [
        {
            "mean_kl": {f"{t:g}": float(row[i] / max(row[-1], 1.0)) for i, t in enumerate(temps)},
            "max_logit_error": float(err),
            "rows": int(row[-1]),
        }
        for row, err in zip(per_view, worst, strict=True)
    ]
    total = per_view.sum(axis=0) if per_view.size else np.zeros(len(temps) + 2)
    n = max(float(total[-1]), 1.0)
    kl = {f"{t:g}": float(total[i] / n) for i, t in enumerate(temps)}
    err = float(worst.max()) if worst.size else 0.0
    shown = ", ".join(f"T={t} {v:.3g}" for t, v in kl.items())
    return {
        "summary": (
            f"quantized fidelity: mean KL(dense || quantized) {shown}; largest logit error "
            f"{err:.3g}"
        ),
        "layout": "quant",
        "bits": spec.bits,
        "bytes_per_sample_view": spec.bytes_per_row,
        "kl": "KL(dense || quantized) per recorded temperature",
        "mean_kl": kl,
        "max_logit_error": err if math.isfinite(err) else None,
        "rows": int(total[-1]),
        "per_view": views,
    }


LAYOUTS.add(QuantLayout.name, QuantLayout)
