"""What a sparse reader checks in every chunk it loads, as ``verify`` does for the whole store.

* A chunk that is not there is looked up by its key, never read as the fill value: ``ids``
  has fill value 0, so a deleted ids chunk would read as class 0 everywhere.
* Every loaded row passes :func:`~sortkd_cache.sparse.row_problems`: ids in ``[0, C)`` with
  none twice, finite values in rank order, finite stats, the label's logit consistent.

A bad chunk raises :class:`~sortkd_cache.errors.CorruptChunkError` naming the array, the chunk
key and the first bad row (exit 2 in the CLI).
"""

from __future__ import annotations

import asyncio
from types import EllipsisType
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from sortkd_cache.errors import CorruptChunkError
from sortkd_cache.sparse import SparseRows, row_problems
from sortkd_cache.store._zarr_compat import run_sync

if TYPE_CHECKING:
    from zarr import Array

    from sortkd_cache.sparse import SparseSpec

#: one index of a ``[samples, views]`` selection: an int, a slice, an index array or ``...``
Index: TypeAlias = int | slice | np.ndarray | list[int] | EllipsisType

__all__ = ["check_present", "check_rows", "selection_rows"]


def _chunk_key(arr: Array[Any], block: int, view: int) -> str:
    key: str = arr.metadata.encode_chunk_key((block, view, 0))
    return key


async def _missing(arr: Array[Any], pairs: list[tuple[int, int]]) -> list[str]:
    store, root = arr.store_path.store, arr.store_path.path
    keys = [_chunk_key(arr, b, v) for b, v in pairs]
    found = await asyncio.gather(*(store.exists(f"{root}/{k}" if root else k) for k in keys))
    return [k for k, there in zip(keys, found, strict=True) if not there]


def check_present(ids: Array[Any], pairs: list[tuple[int, int]], where: str) -> None:
    """Refuse when the ids chunk of any (block, view) in ``pairs`` is not stored."""
    if not pairs:
        return
    missing = run_sync(_missing(ids, pairs))
    if missing:
        raise CorruptChunkError(
            f"{where}/ids chunk {missing[0]} is missing (it would read as class 0); "
            "verify lists every damaged chunk"
        )


def check_rows(spec: SparseSpec, rows: SparseRows, labels: np.ndarray, where: str) -> None:
    """Refuse rows (``[..., K]``, labels ``[...]``) that fail the row checks of ``verify``."""
    k = rows.ids.shape[-1]
    flat = SparseRows(
        rows.ids.reshape(-1, k),
        rows.values.reshape(-1, k),
        rows.stats.reshape(-1, rows.stats.shape[-1]),
    )
    found = row_problems(spec, flat, np.asarray(labels).reshape(-1))
    if found:
        raise CorruptChunkError(f"{where}: {found[0]}")


def _axis(sel: Index, n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64)[sel]


def selection_rows(
    selection: tuple[Index, ...], shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray] | None:
    """The sample and view indices a ``[samples, views]`` selection reads (each an int64
    array, 0-D for an integer), or None for a selection this does not follow (one that also
    cuts the K axis, or a boolean or multi-dimensional index)."""
    sel = tuple(slice(None) if s is Ellipsis else s for s in selection)
    if len(sel) > 2:
        return None
    sel = sel + (slice(None),) * (2 - len(sel))
    try:
        samples, views = _axis(sel[0], shape[0]), _axis(sel[1], shape[1])
    except (IndexError, TypeError, ValueError):
        return None
    if samples.ndim > 1 or views.ndim > 1:
        return None
    return samples, views
