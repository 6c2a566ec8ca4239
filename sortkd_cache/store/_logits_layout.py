"""How a store holds its logits kinds, as one object: :class:`DenseLayout` or :class:`SparseLayout`.

A store's logits are dense (one ``[N, V, C]`` array per kind) or sparse (per kind a group of
top-K ``ids``, ``values`` and ``stats``: :mod:`._sparse`). Everything that differs between the
two is a method here, so that the stages and the training path ask ``store.layout`` instead of
branching on the layout themselves:

* how a row is read (:meth:`~LogitsLayout.reader`, :meth:`~LogitsLayout.pack`) and written
  (:meth:`~LogitsLayout.create_kind`, :meth:`~LogitsLayout.write_rows`,
  :meth:`~LogitsLayout.encode`), and checked (:meth:`~LogitsLayout.kind_arrays`,
  :meth:`~LogitsLayout.row_problems`);
* what a loss is handed (:meth:`~LogitsLayout.pack`: the chunk's arrays, which the data path
  turns into the losses' one teacher-rows type: a dense tensor, or
  :class:`~sortkd_cache.losses.SparseTeacher` rows of :attr:`~LogitsLayout.spec`);
* how a kind is sorted (:meth:`~LogitsLayout.sort_rows`, and the resume record of the sort
  stage: :meth:`~LogitsLayout.sorted_chunks`, :meth:`~LogitsLayout.write_sorted`,
  :meth:`~LogitsLayout.record_sorted`).

:func:`layout_of` is the one place where the layout is chosen, from the store's record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from sortkd_cache.errors import ConfigError, CorruptChunkError, LogitsKindError
from sortkd_cache.sorting import apply_with_stats
from sortkd_cache.sparse import (
    SparseRows,
    SparseSpec,
    apply_sparse,
    chunk_sums,
    compress,
    label_positions,
    row_problems,
)
from sortkd_cache.store._layout import logits_path, progress_path
from sortkd_cache.store._logits import LogitsArray
from sortkd_cache.store._problem import Problem
from sortkd_cache.store._sparse import (
    SPARSE_ARRAYS,
    SparseLogitsArray,
    create_sparse_arrays,
    fidelity_record,
    sparse_path,
    write_sparse_chunk,
)
from sortkd_cache.store._zarr_compat import run_sync

if TYPE_CHECKING:
    from sortkd_cache.store._meta import StoreMeta

__all__ = ["DenseLayout", "LayoutStore", "LogitsLayout", "SparseLayout", "layout_of"]

Rows = np.ndarray | SparseRows  #: one chunk of a kind: dense [S, C] or sparse rows
#: what a layout's chunks are made of, as numpy arrays with the rows first (for readers that
#: gather rows across chunks): (logits,) or (ids, values, stats)
Packed = tuple[np.ndarray, ...]


class LayoutStore(Protocol):
    """What a layout uses of a :class:`~sortkd_cache.store.CacheStore`."""

    @property
    def url(self) -> str: ...
    @property
    def meta(self) -> StoreMeta: ...
    @property
    def num_views(self) -> int: ...
    @property
    def num_blocks(self) -> int: ...
    @property
    def labels(self) -> np.ndarray: ...
    def block_bounds(self, block: int) -> tuple[int, int]: ...
    def raw_array(self, path: str) -> Any: ...
    def has_array(self, path: str) -> bool: ...
    def progress(self, kind: str) -> np.ndarray: ...
    def create_group(self, path: str, attributes: Mapping[str, Any]) -> Any: ...
    def create_array(
        self,
        path: str,
        shape: tuple[int, ...],
        chunks: tuple[int, ...],
        dtype: str,
        fill_value: Any,
        *,
        overwrite: bool = False,
        attributes: dict[str, Any] | None = None,
    ) -> Any: ...
    def write_chunk(
        self, kind: str, block: int, view: int, values: Rows, *, count: int = 0
    ) -> None: ...


class LogitsLayout:
    """The questions whose answer differs between a dense and a sparse store."""

    name: ClassVar[str] = ""
    #: the top-K format of a sparse store; None for a dense one
    spec: SparseSpec | None = None

    def reader(self, store: LayoutStore, kind: str) -> LogitsArray | SparseLogitsArray:
        """The kind's rows: ``reader[i, v]`` and ``read_block(block, view)`` give chunks."""
        raise NotImplementedError

    def kind_arrays(self, store: LayoutStore, kind: str) -> list[str]:
        """The arrays that hold the kind's logits."""
        raise NotImplementedError

    def create_kind(
        self, store: LayoutStore, kind: str, dtype: str, attrs: dict[str, Any], fidelity: bool
    ) -> dict[str, Any]:
        """Create (replacing) the kind's arrays; returns ``{path: array}``."""
        raise NotImplementedError

    def kind_paths(self, kind: str) -> list[str]:
        """Every node path the kind's arrays live at (for handle caches)."""
        raise NotImplementedError

    def write_rows(
        self, store: LayoutStore, kind: str, block: int, view: int, rows: Rows, fidelity: Any
    ) -> None:
        """Write one (block, view) chunk of the kind (no progress marker)."""
        raise NotImplementedError

    def encode(self, dense: np.ndarray, labels: np.ndarray) -> tuple[Rows, np.ndarray | None]:
        """A dense chunk ``[S, C]`` as this layout's rows, with its fidelity sums (sparse)."""
        raise NotImplementedError

    def finish_attrs(self, store: LayoutStore, kind: str) -> dict[str, Any]:
        """What a finished kind made from dense rows records (sparse: its fidelity)."""
        raise NotImplementedError

    def fidelity_sums(self, store: LayoutStore, kind: str) -> Any | None:
        """The per-(block, view) fidelity sums [B, V, T+2] of a kind made from dense rows
        (what a re-sliced copy carries along), or None where the kind has none."""
        raise NotImplementedError

    def row_problems(self, store: LayoutStore, kinds: Sequence[str]) -> list[Problem]:
        """Rows checked across arrays (sparse: the label's logit, the rank order)."""
        raise NotImplementedError

    def row_bytes(self, meta: StoreMeta) -> int:
        """Bytes of one sample-view's logits, before compression."""
        raise NotImplementedError

    def check_copy(self, url: str, topk: int | None, dtype: str) -> None:
        """Refuse what ``copy`` cannot do to this layout (``--topk``, ``--dtype``)."""
        raise NotImplementedError

    def cast(self, rows: Rows, dtype: str) -> Rows:
        """A chunk in ``dtype`` (``copy --dtype``; sparse stores keep theirs)."""
        raise NotImplementedError

    def sort_rows(
        self, method: str, rows: Rows, labels: np.ndarray
    ) -> tuple[Rows, np.ndarray, np.ndarray]:
        """``(rows after method, the label's rank, the top class)`` of one chunk."""
        raise NotImplementedError

    def sorted_chunks(self, store: LayoutStore, kind: str) -> np.ndarray:
        """bool [blocks, V]: the chunks of ``kind`` an earlier sort run wrote."""
        raise NotImplementedError

    def write_sorted(
        self, store: LayoutStore, kind: str, block: int, view: int, rows: Rows, changed: int
    ) -> None:
        """Write one sorted chunk, with its progress record where this layout keeps one."""
        raise NotImplementedError

    def record_sorted(self, store: LayoutStore, kind: str, changed: np.ndarray) -> None:
        """Record a finished sort's per-chunk counts ``[blocks * V]``, where not yet done."""
        raise NotImplementedError

    def kept(self, rows: Rows) -> tuple[np.ndarray, np.ndarray | None]:
        """A chunk's stored logit values and their class ids (int64; None: every class)."""
        raise NotImplementedError

    def pack(self, rows: Rows) -> Packed:
        """A chunk as arrays with the rows first (see :data:`Packed`)."""
        raise NotImplementedError


class DenseLayout(LogitsLayout):
    """One ``[N, V, C]`` array per kind, ``logits/<kind>``."""

    name = "dense"

    def reader(self, store: LayoutStore, kind: str) -> LogitsArray:
        return LogitsArray(store.raw_array(logits_path(kind)), kind, store.url)

    def kind_arrays(self, store: LayoutStore, kind: str) -> list[str]:
        return [logits_path(kind)]

    def kind_paths(self, kind: str) -> list[str]:
        return [logits_path(kind)]

    def create_kind(
        self, store: LayoutStore, kind: str, dtype: str, attrs: dict[str, Any], fidelity: bool
    ) -> dict[str, Any]:
        m, s, path = store.meta, store.meta.chunk_samples, logits_path(kind)
        shape, chunks = (m.num_samples, m.num_views, m.num_classes), (s, 1, m.num_classes)
        nan = float("nan")
        arr = store.create_array(path, shape, chunks, dtype, nan, overwrite=True, attributes=attrs)
        return {path: arr}

    def write_rows(
        self, store: LayoutStore, kind: str, block: int, view: int, rows: Rows, fidelity: Any
    ) -> None:
        start, stop = store.block_bounds(block)
        store.raw_array(logits_path(kind))[start:stop, view] = rows

    def encode(self, dense: np.ndarray, labels: np.ndarray) -> tuple[Rows, np.ndarray | None]:
        return dense, None

    def finish_attrs(self, store: LayoutStore, kind: str) -> dict[str, Any]:
        return {}

    def fidelity_sums(self, store: LayoutStore, kind: str) -> Any | None:
        return None

    def row_problems(self, store: LayoutStore, kinds: Sequence[str]) -> list[Problem]:
        return []

    def row_bytes(self, meta: StoreMeta) -> int:
        return int(meta.num_classes) * int(np.dtype(meta.dtype).itemsize)

    def check_copy(self, url: str, topk: int | None, dtype: str) -> None:
        return None  # both apply

    def cast(self, rows: Rows, dtype: str) -> Rows:
        return np.asarray(rows).astype(dtype)

    def sort_rows(
        self, method: str, rows: Rows, labels: np.ndarray
    ) -> tuple[Rows, np.ndarray, np.ndarray]:
        applied = apply_with_stats(method, np.asarray(rows), labels)
        return applied.out, applied.rank, applied.top

    def sorted_chunks(self, store: LayoutStore, kind: str) -> np.ndarray:
        """The chunks present (one listing): a dense chunk's presence is its record."""
        arr = store.raw_array(logits_path(kind))
        prefix = f"{arr.store_path.path}/"

        async def listed() -> set[str]:
            return {key async for key in arr.store_path.store.list_prefix(prefix)}

        keys = run_sync(listed())
        done = np.zeros((store.num_blocks, store.num_views), dtype=bool)
        for b, v in np.ndindex(*done.shape):
            done[b, v] = prefix + arr.metadata.encode_chunk_key((b, v, 0)) in keys
        return done

    def write_sorted(
        self, store: LayoutStore, kind: str, block: int, view: int, rows: Rows, changed: int
    ) -> None:
        self.write_rows(store, kind, block, view, rows, None)

    def record_sorted(self, store: LayoutStore, kind: str, changed: np.ndarray) -> None:
        counts = changed.astype(np.int64).reshape(-1, store.num_views)
        store.raw_array(progress_path(kind))[...] = counts

    def kept(self, rows: Rows) -> tuple[np.ndarray, np.ndarray | None]:
        return np.asarray(rows), None

    def pack(self, rows: Rows) -> Packed:
        return (np.asarray(rows),)


class SparseLayout(LogitsLayout):
    """Per kind a group of top-K ``ids``, ``values`` and ``stats`` (:mod:`._sparse`)."""

    name = "sparse"

    def __init__(self, spec: SparseSpec) -> None:
        self.spec: SparseSpec = spec

    def reader(self, store: LayoutStore, kind: str) -> SparseLogitsArray:
        """Every read checked as it loads (the ids chunk by its key, the rows as verify
        checks them: :class:`~._sparse.SparseLogitsArray` with the store's labels)."""
        return self._arrays(store, kind, store.labels)

    def _arrays(
        self, store: LayoutStore, kind: str, labels: np.ndarray | None
    ) -> SparseLogitsArray:
        arrays = {n: store.raw_array(sparse_path(kind, n)) for n in SPARSE_ARRAYS[:3]}
        return SparseLogitsArray(arrays, self.spec, kind, store.url, labels)

    def kind_arrays(self, store: LayoutStore, kind: str) -> list[str]:
        found = [sparse_path(kind, n) for n in SPARSE_ARRAYS[:3]]
        fidelity = sparse_path(kind, "fidelity")
        return found + ([fidelity] if store.has_array(fidelity) else [])

    def kind_paths(self, kind: str) -> list[str]:
        return [logits_path(kind), *(sparse_path(kind, n) for n in SPARSE_ARRAYS)]

    def create_kind(
        self, store: LayoutStore, kind: str, dtype: str, attrs: dict[str, Any], fidelity: bool
    ) -> dict[str, Any]:
        return create_sparse_arrays(store, kind, attrs, fidelity=fidelity)

    def write_rows(
        self, store: LayoutStore, kind: str, block: int, view: int, rows: Rows, fidelity: Any
    ) -> None:
        bounds = store.block_bounds(block)
        write_sparse_chunk(store.raw_array, kind, block, bounds, view, rows, fidelity)

    def encode(self, dense: np.ndarray, labels: np.ndarray) -> tuple[Rows, np.ndarray | None]:
        """Truncated to the top K, with the chunk's fidelity sums [T + 2]."""
        rows = compress(dense, labels, self.spec)
        kl, outside, n = chunk_sums(self.spec, dense, labels, rows)
        return rows, np.concatenate([kl, [float(outside), float(n)]])

    def finish_attrs(self, store: LayoutStore, kind: str) -> dict[str, Any]:
        fid = store.raw_array(sparse_path(kind, "fidelity"))[...]
        return {"fidelity": fidelity_record(self.spec, np.asarray(fid, dtype=np.float64))}

    def fidelity_sums(self, store: LayoutStore, kind: str) -> Any | None:
        path = sparse_path(kind, "fidelity")
        return store.raw_array(path) if store.has_array(path) else None

    def row_problems(self, store: LayoutStore, kinds: Sequence[str]) -> list[Problem]:
        """Per written (block, view) chunk of each kind: the label's logit present and
        consistent, the rank order; one problem per kind at most."""
        out, labels = [], store.labels
        for kind in kinds:
            if not store.has_array(sparse_path(kind, "ids")):
                continue
            # unchecked reads: verify reports a bad row instead of stopping at it
            data, done = self._arrays(store, kind, None), store.progress(kind) >= 0
            for block, view in zip(*np.nonzero(done), strict=True):
                start, stop = store.block_bounds(int(block))
                try:
                    rows = data[start:stop, int(view)]
                except CorruptChunkError:
                    continue  # reported chunk by chunk already
                found = row_problems(self.spec, rows, labels[start:stop])
                if found:
                    where = f"block {int(block)}, view {int(view)}"
                    out.append(Problem("content", f"{where}: {found[0]}", logits_path(kind)))
                    break
        return out

    def row_bytes(self, meta: StoreMeta) -> int:
        return int(self.spec.bytes_per_row)

    def check_copy(self, url: str, topk: int | None, dtype: str) -> None:
        if topk is not None:
            raise LogitsKindError(
                f"--topk needs dense logits, but '{url}' is already sparse "
                f"(top-{self.spec.k}); copy it without --topk"
            )
        if dtype != self.spec.dtype:
            raise ConfigError("--dtype narrows dense stores only; this store is sparse")

    def cast(self, rows: Rows, dtype: str) -> Rows:
        return rows  # check_copy refused another dtype

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

    def sorted_chunks(self, store: LayoutStore, kind: str) -> np.ndarray:
        """Several arrays per chunk: a progress marker per chunk, written after them."""
        done: np.ndarray = store.progress(kind) >= 0
        return done

    def write_sorted(
        self, store: LayoutStore, kind: str, block: int, view: int, rows: Rows, changed: int
    ) -> None:
        store.write_chunk(kind, block, view, rows, count=changed)

    def record_sorted(self, store: LayoutStore, kind: str, changed: np.ndarray) -> None:
        return None  # written chunk by chunk, with the chunks

    def kept(self, rows: Rows) -> tuple[np.ndarray, np.ndarray | None]:
        packed = self.pack(rows)
        return packed[1], packed[0].astype(np.int64)

    def pack(self, rows: Rows) -> Packed:
        if not isinstance(rows, SparseRows):
            raise LogitsKindError("sparse rows expected")
        return rows.ids, rows.values, rows.stats


def layout_of(meta: StoreMeta) -> LogitsLayout:
    """The layout a store's record declares (the one place it is chosen)."""
    if meta.sparse is None:
        return DenseLayout()
    return SparseLayout(SparseSpec.from_dict(meta.sparse))
