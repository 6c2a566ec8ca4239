"""What the sampled and the quantized layouts share: a kind as a group of row arrays read
whole (:class:`RowsGroupArray`, every chunk checked as it loads) and written whole
(:class:`RowsGroupLayout`), with a ``fidelity`` array beside them where the kind was made from
dense rows. Each layout names its arrays, its rows type and its row check."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from sortkd_cache.errors import ConfigError, CorruptChunkError, LogitsKindError
from sortkd_cache.sparse import (
    QuantRows,
    QuantSpec,
    SampledRows,
    SampledSpec,
    SparseSpec,
)
from sortkd_cache.store._chunk_scan import chunk_row_problems
from sortkd_cache.store._group_layout import GroupLayout
from sortkd_cache.store._layout import logits_path
from sortkd_cache.store._logits import zarr_get
from sortkd_cache.store._logits_layout import LayoutStore, Packed, Rows
from sortkd_cache.store._problem import Problem
from sortkd_cache.store._sparse import GroupArray, expected_sparse, sparse_path
from sortkd_cache.store._sparse_check import Index, check_present

if TYPE_CHECKING:
    from zarr import Array

    from sortkd_cache.store._meta import StoreMeta

__all__ = ["RowsGroupArray", "RowsGroupLayout"]

#: the rows of these layouts, and their formats
GroupRows = SampledRows | QuantRows
GroupSpec = SampledSpec | QuantSpec
#: a layout's row check: (spec, rows, their labels) -> what is wrong, first first
RowCheck = Callable[[GroupSpec, GroupRows, np.ndarray], list[str]]


class RowsGroupArray(GroupArray[Any]):
    """Read-only rows of one kind: ``read_block(block, view)`` and ``arr[i, v]`` give the
    layout's rows type; with ``labels`` every chunk is checked as it loads (a missing chunk
    of the first array by its key, the rows as ``verify`` checks them)."""

    def __init__(
        self,
        arrays: dict[str, Array[Any]],
        spec: GroupSpec,
        kind: str,
        where: str,
        labels: np.ndarray | None,
        make: Callable[..., GroupRows],
        check: RowCheck,
    ) -> None:
        super().__init__(arrays, spec, kind, where, labels)
        self._make, self._check = make, check

    def _get(self, selection: tuple[Index, ...]) -> GroupRows:
        out = []
        for name, array in self._arrays.items():
            what = f"{self._where} {sparse_path(self.kind, name)}[{selection!r}]"
            arr = zarr_get(array, selection, what)
            if arr.dtype.kind == "f" and np.isnan(arr).any():
                raise CorruptChunkError(f"{what}: missing chunk (reads as NaN)")
            out.append(arr)
        return self._make(*out)

    def __getitem__(self, selection: Index | tuple[Index, ...]) -> GroupRows:
        return self._get(selection if isinstance(selection, tuple) else (selection,))

    def read_block(self, block: int, view: int) -> GroupRows:
        s = self.chunks[0]
        start, stop = block * s, min(self.shape[0], (block + 1) * s)
        where = f"{self._where} {logits_path(self.kind)}"
        if self._labels is not None:
            check_present(self._first, [(block, view)], where)
        rows = self._get((slice(start, stop), view))
        if self._labels is not None:
            found = self._check(self.spec, rows, self._labels[start:stop])
            if found:
                at = f" chunk (block {block}, view {view})"
                raise CorruptChunkError(f"{where}{at}: {found[0]}")
        return rows


RowsT = TypeVar("RowsT", SampledRows, QuantRows)
FormatT = TypeVar("FormatT", SampledSpec, QuantSpec)


class RowsGroupLayout(GroupLayout, Generic[RowsT, FormatT]):
    """A layout whose rows are one object of :attr:`rows_type` over :attr:`arrays` (each
    ``[N, V, width]``, in that order), checked by :attr:`check`."""

    #: the rows type, built from the row arrays in order (``SampledRows``, ``QuantRows``)
    rows_type: type[RowsT]
    #: the row check ``verify`` and every checked read run: (spec, rows, labels) -> problems
    #: (a staticmethod)
    check: Callable[..., list[str]]

    #: the format record's type (``SampledSpec``, ``QuantSpec``), read from the store's record
    spec_type: type[FormatT]
    spec: FormatT

    def __init__(self, spec: FormatT) -> None:
        self.spec = spec

    @classmethod
    def from_meta(cls, meta: StoreMeta) -> RowsGroupLayout[RowsT, FormatT]:
        return cls(cls.spec_type.from_dict(dict(meta.sparse or {})))

    def describe(self) -> str:
        return self.spec.describe()

    def stored_topk(self, topk: int | None, url: str) -> SparseSpec | None:
        if topk is not None:
            raise ConfigError(
                f"--topk {topk} applies to dense or top-K stores; '{url}' is {self.word} "
                f"({self.describe()}): leave --topk out"
            )
        return None

    def _rows(self, rows: Rows) -> RowsT:
        if not isinstance(rows, self.rows_type):
            raise LogitsKindError(f"{self.word} rows expected")
        return rows

    def reader(self, store: LayoutStore, kind: str) -> RowsGroupArray:
        return self._arrays(store, kind, store.labels)

    def _arrays(self, store: LayoutStore, kind: str, labels: np.ndarray | None) -> RowsGroupArray:
        arrays = {n: store.raw_array(sparse_path(kind, n)) for n in self.arrays}
        return RowsGroupArray(
            arrays, self.spec, kind, store.url, labels, self.rows_type, self.check
        )

    def create_kind(
        self, store: LayoutStore, kind: str, dtype: str, attrs: dict[str, Any], fidelity: bool
    ) -> dict[str, Any]:
        """The kind's group and arrays (replacing any); float arrays fill with NaN (a missing
        chunk reads as NaN and is refused), the others with 0."""
        store.create_group(logits_path(kind), attrs)
        out = {}
        for name in (*self.arrays, "fidelity") if fidelity else self.arrays:
            path = sparse_path(kind, name)
            shape, chunks, dt = expected_sparse(store.meta, path) or ((), (), "")
            fill: Any = float("nan") if np.dtype(dt).kind == "f" else 0
            out[path] = store.create_array(path, shape, chunks, dt, fill, overwrite=True)
        return out

    def write_rows(
        self, store: LayoutStore, kind: str, block: int, view: int, rows: Rows, fidelity: Any
    ) -> None:
        start, stop = store.block_bounds(block)
        for name, arr in zip(self.arrays, self._rows(rows).arrays(), strict=True):
            store.raw_array(sparse_path(kind, name))[start:stop, view] = arr
        if fidelity is not None:
            store.raw_array(sparse_path(kind, "fidelity"))[block, view] = fidelity

    def row_problems(self, store: LayoutStore, kinds: Sequence[str]) -> list[Problem]:
        """Per written chunk of each kind, the layout's row check; one problem per kind."""
        check = self.check
        return chunk_row_problems(
            store,
            kinds,
            lambda kind: self._arrays(store, kind, None),
            lambda rows, labels: check(self.spec, rows, labels),
            first=self.arrays[0],
        )

    def pack(self, rows: Rows) -> Packed:
        packed: Packed = self._rows(rows).arrays()
        return packed
