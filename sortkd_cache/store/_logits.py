"""Read-only logits arrays with checked reads (split out of :mod:`._store`)."""

from __future__ import annotations

import asyncio
from types import EllipsisType
from typing import Any

import numpy as np
import numpy.typing as npt
from zarr.types import AnyArray

from sortkd_cache.errors import CorruptChunkError
from sortkd_cache.store._zarr_compat import run_sync
from sortkd_cache.store._zipcheck import ZipMemberError

__all__ = ["LogitsArray", "Selection", "zarr_get"]

#: a numpy-style basic selection: an int, a slice, an index array, or a tuple of them
Selection = int | slice | EllipsisType | np.ndarray | list[int] | tuple[Any, ...]


def zarr_get(arr: AnyArray, selection: Selection, what: str) -> np.ndarray:
    """Read a selection; any decode failure (checksum, truncation) becomes CorruptChunkError."""
    try:
        out = arr[selection]
    except ZipMemberError:  # names the damaged member already
        _drain_zarr_loop()
        raise
    except (ValueError, RuntimeError, OSError, EOFError) as exc:
        _drain_zarr_loop()
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CorruptChunkError(f"{what}: corrupted chunk ({msg})") from None
    return np.asarray(out)


def _drain_zarr_loop(timeout: float = 10.0) -> None:
    """Let the reads zarr still runs for a failed selection finish.

    zarr gathers a selection's chunk reads without cancelling the others when one fails; left
    pending, they are destroyed at exit with one "Task was destroyed" line each."""

    async def drain() -> None:
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if others:
            await asyncio.wait(others, timeout=timeout)

    run_sync(drain())


def _has_nan(a: np.ndarray) -> bool:
    """NaN anywhere (float16 through its bit pattern: numpy's float16 isnan is slow)."""
    if a.dtype == np.float16:
        return bool(((a.view(np.uint16) & 0x7FFF) > 0x7C00).any())
    return bool(np.isnan(a).any())


class LogitsArray:
    """Read-only [N, V, C] logits with numpy-style slicing and checked reads.

    Missing chunks read as NaN (the fill value) and are reported as :class:`CorruptChunkError`,
    as are chunks failing their checksum.
    """

    def __init__(self, array: AnyArray, kind: str, where: str) -> None:
        self._array = array
        self.kind = kind
        self._where = where

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self._array.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        dt: np.dtype[Any] = np.dtype(self._array.dtype)
        return dt

    @property
    def chunks(self) -> tuple[int, ...]:
        return tuple(int(c) for c in self._array.chunks)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, selection: Selection) -> np.ndarray:
        out = zarr_get(self._array, selection, f"{self._where} logits/{self.kind}[{selection!r}]")
        if out.dtype.kind == "f" and _has_nan(out):
            raise CorruptChunkError(
                f"{self._where} logits/{self.kind}[{selection!r}]: missing chunk (reads as NaN)"
            )
        return out

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        out = self[...]
        return out.astype(dtype) if dtype is not None else out

    def read_block(self, block: int, view: int) -> np.ndarray:
        """One chunk: the block's samples of one view, [S, C]."""
        s = self.chunks[0]
        return self[block * s : min(self.shape[0], (block + 1) * s), view]
