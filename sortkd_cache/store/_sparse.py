"""The sparse (top-K) layout of a logits kind inside a store.

A sparse store (root record ``sparse``, schema 2) holds every logits kind as a group::

    /logits/<kind>/ids       uint8|uint16|int32 [N, V, K]  chunks (S, 1, K)
    /logits/<kind>/values    logits dtype       [N, V, K]  chunks (S, 1, K)
    /logits/<kind>/stats     logits dtype       [N, V, 7]  chunks (S, 1, 7)  (columns in the
                             sparse record: label, mean, std, tail@1, tail@2, tail@4, tail_std@2)
    /logits/<kind>/fidelity  float64            [B, V, T+2] chunks (1, 1, T+2), only where the
                             kind was made from dense rows: per (block, view) the sum of
                             KL(T) at each recorded T, the rows whose label fell outside the
                             top K, and the rows
    /progress/<kind>         as for dense kinds

The group's attributes are the kind's (``complete``, ``stats``, and the summed ``fidelity``).
See :mod:`sortkd_cache.sparse` for what the fields mean.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from sortkd_cache import sparse
from sortkd_cache.errors import CorruptChunkError
from sortkd_cache.sparse import QuantSpec, SampledSpec, SparseRows, SparseSpec
from sortkd_cache.store._layout import logits_path
from sortkd_cache.store._logits import zarr_get
from sortkd_cache.store._meta import StoreMeta
from sortkd_cache.store._sparse_check import Index, check_present, check_rows, selection_rows

if TYPE_CHECKING:
    from zarr import Array

__all__ = [
    "SPARSE_ARRAYS",
    "SparseLogitsArray",
    "create_sparse_arrays",
    "expected_sparse",
    "fidelity_record",
    "sparse_path",
    "write_sparse_chunk",
]

SpecT = TypeVar("SpecT", SparseSpec, SampledSpec, QuantSpec)

SPARSE_ARRAYS = ("ids", "values", "stats", "fidelity")


def sparse_path(kind: str, name: str) -> str:
    return f"{logits_path(kind)}/{name}"


def _widths(meta: StoreMeta) -> dict[str, tuple[int, str]]:
    """Per array name of a non-dense kind: (width, dtype), as its spec gives them."""
    return sparse.spec_of_record(dict(meta.sparse or {})).array_widths()


def expected_sparse(
    meta: StoreMeta, path: str
) -> tuple[tuple[int, ...], tuple[int, ...], str] | None:
    """(shape, chunks, dtype) of a sparse (top-K or sampled) array at ``path``; None when
    ``path`` is not one."""
    if meta.sparse is None or not path.startswith("logits/") or path.count("/") != 2:
        return None
    found = _widths(meta).get(path.rsplit("/", 1)[1])
    if found is None:
        return None
    (width, dtype), n, v, s = found, meta.num_samples, meta.num_views, meta.chunk_samples
    if path.endswith("/fidelity"):
        return (-(-n // s), v, width), (1, 1, width), dtype
    return (n, v, width), (s, 1, width), dtype


def create_sparse_arrays(
    store: Any, kind: str, attrs: dict[str, Any], *, fidelity: bool
) -> dict[str, Any]:
    """Create the kind's group and arrays (replacing any), each with its metadata checksum;
    returns {path: array}."""
    store.create_group(logits_path(kind), attrs)
    out = {}
    for name in SPARSE_ARRAYS:
        if name == "fidelity" and not fidelity:
            continue
        path = sparse_path(kind, name)
        shape, chunks, dtype = expected_sparse(store.meta, path) or ((), (), "")
        fill: Any = 0 if name == "ids" else float("nan")
        out[path] = store.create_array(path, shape, chunks, dtype, fill, overwrite=True)
    return out


def write_sparse_chunk(
    array: Callable[[str], Array[Any]],
    kind: str,
    block: int,
    bounds: tuple[int, int],
    view: int,
    rows: Any,
    fid: np.ndarray | None,
) -> None:
    """Write one (block, view) chunk of sparse rows (and its fidelity sums, if any)."""
    start, stop = bounds
    array(sparse_path(kind, "ids"))[start:stop, view] = rows.ids
    array(sparse_path(kind, "values"))[start:stop, view] = rows.values
    array(sparse_path(kind, "stats"))[start:stop, view] = rows.stats
    if fid is not None:
        array(sparse_path(kind, "fidelity"))[block, view] = fid


def fidelity_record(spec: SparseSpec, sums: np.ndarray) -> dict[str, Any]:
    """The kind's fidelity attribute from the per-(block, view) sums [B, V, T+2]."""
    acc = sparse.FidelityAccumulator(spec, sums.shape[1])  # torch: loaded on first use
    per_view = sums.sum(axis=0)
    t = len(spec.temperatures)
    acc.kl[:] = per_view[:, :t]
    acc.outside[:] = per_view[:, t].astype(np.int64)
    acc.rows[:] = per_view[:, t + 1].astype(np.int64)
    return acc.result()


class GroupArray(Generic[SpecT]):
    """One kind's group of row arrays (``ids`` first, [N, V, ...]) read as rows: what the
    top-K and the sampled arrays share (their spec, kind, store location and labels)."""

    def __init__(
        self,
        arrays: dict[str, Any],
        spec: SpecT,
        kind: str,
        where: str,
        labels: np.ndarray | None = None,
    ) -> None:
        self._arrays, self.kind = arrays, kind
        self.spec: SpecT = spec
        self._where, self._labels = where, labels

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self._first.shape)

    @property
    def chunks(self) -> tuple[int, ...]:
        return tuple(int(c) for c in self._first.chunks)

    @property
    def _first(self) -> Any:
        """The kind's first row array (``ids``; a quantized kind's ``codes``)."""
        return next(iter(self._arrays.values()))

    def __len__(self) -> int:
        return self.shape[0]


class SparseLogitsArray(GroupArray[SparseSpec]):
    """Read-only sparse logits of one kind: ``arr[i, v]`` (numpy-style over [N, V]) gives
    :class:`~sortkd_cache.sparse.SparseRows` with ids [..., K], values [..., K], stats [..., S].

    With ``labels`` (the store's, as :meth:`CacheStore.sparse_logits` passes them) every read
    is checked as it loads (:mod:`._sparse_check`): a missing ids chunk is found by its key,
    and every row read passes ``verify``'s row checks; a bad chunk raises
    :class:`~sortkd_cache.errors.CorruptChunkError` naming it. Without labels (``verify``'s
    own scan, which reports instead of stopping) only unreadable chunks and NaN are refused.
    """

    def _get(self, name: str, selection: tuple[Index, ...]) -> np.ndarray:
        what = f"{self._where} {sparse_path(self.kind, name)}[{selection!r}]"
        out = zarr_get(self._arrays[name], selection, what)
        if out.dtype.kind == "f" and np.isnan(out).any():
            raise CorruptChunkError(f"{what}: missing chunk (reads as NaN)")
        return out

    def __getitem__(self, selection: Index | tuple[Index, ...]) -> SparseRows:
        if not isinstance(selection, tuple):
            selection = (selection,)
        return self._read(selection, f"[{selection!r}]")

    def _read(self, selection: tuple[Index, ...], at: str) -> SparseRows:
        picked = None
        if self._labels is not None:
            picked = selection_rows(selection, self.shape[:2])
        where = f"{self._where} {logits_path(self.kind)}"
        if picked is not None:
            samples, views = picked
            blocks = np.unique(np.atleast_1d(samples) // self.chunks[0]).tolist()
            pairs = [(b, v) for b in blocks for v in np.atleast_1d(views).tolist()]
            check_present(self._arrays["ids"], pairs, where)
        rows = SparseRows(
            self._get("ids", selection),
            self._get("values", selection),
            self._get("stats", selection),
        )
        if picked is not None and self._labels is not None:
            samples, views = picked
            y = self._labels[samples]
            if views.ndim == 1:
                y = np.broadcast_to(np.expand_dims(y, -1), (*samples.shape, *views.shape))
            check_rows(self.spec, rows, y, f"{where}{at}")
        return rows

    def read_block(self, block: int, view: int) -> SparseRows:
        """One (block, view) chunk's rows, checked (see the class docstring)."""
        s = self.chunks[0]
        rows = slice(block * s, min(self.shape[0], (block + 1) * s))
        return self._read((rows, view), f" chunk (block {block}, view {view})")


def sparse_id_problem(ids: np.ndarray, num_classes: int) -> str | None:
    """One chunk of ids [..., K]: every id within [0, C) and no id twice in a row."""
    wide = ids.astype(np.int64)
    if ((wide < 0) | (wide >= num_classes)).any():
        return f"class ids outside [0, {num_classes})"
    srt = np.sort(wide, axis=-1)
    if (srt[..., 1:] == srt[..., :-1]).any():
        return "a class id appears twice in a row"
    return None
