"""The dense logits layout: one ``[N, V, C]`` array per kind (``logits/<kind>``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sortkd_cache.sorting import apply_with_stats
from sortkd_cache.sparse import SparseSpec
from sortkd_cache.store._layout import logits_path, progress_path
from sortkd_cache.store._logits import LogitsArray
from sortkd_cache.store._logits_layout import LAYOUTS, LayoutStore, LogitsLayout, Packed, Rows
from sortkd_cache.store._problem import Problem
from sortkd_cache.store._zarr_compat import run_sync

if TYPE_CHECKING:
    from sortkd_cache.store._meta import StoreMeta

__all__ = ["DenseLayout"]


class DenseLayout(LogitsLayout):
    """One ``[N, V, C]`` array per kind, ``logits/<kind>``."""

    name = "dense"
    training = "sortkd_cache.data._layouts:DENSE"
    topk_per_batch = True

    @classmethod
    def from_meta(cls, meta: StoreMeta) -> DenseLayout:
        return cls()

    def describe(self) -> str:
        return "dense"

    def info_record(self) -> dict[str, Any] | None:
        return None

    def required_arrays(self, kind: str) -> list[str]:
        return [logits_path(kind)]

    def stored_topk(self, topk: int | None, url: str) -> SparseSpec | None:
        return None  # --topk K truncates each batch

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

    def encode(
        self, dense: np.ndarray, labels: np.ndarray, *, at: tuple[int, int] = (0, 0)
    ) -> tuple[Rows, np.ndarray | None]:
        return dense, None

    def finish_attrs(self, store: LayoutStore, kind: str) -> dict[str, Any]:
        return {}

    def fidelity_sums(self, store: LayoutStore, kind: str) -> Any | None:
        return None

    def row_problems(self, store: LayoutStore, kinds: Sequence[str]) -> list[Problem]:
        return []

    def row_bytes(self, meta: StoreMeta) -> int:
        return int(meta.num_classes) * int(np.dtype(meta.dtype).itemsize)

    def check_copy(self, url: str, derive: str | None, dtype: str) -> None:
        return None  # every one applies

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


LAYOUTS.add(DenseLayout.name, DenseLayout)
