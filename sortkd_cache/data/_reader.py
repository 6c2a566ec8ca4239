"""Soft labels read chunk by chunk, in the order a rank consumes them, with bounded memory.

:class:`ChunkWindowReader` is given one rank's sample order for an epoch (see
:mod:`._order`) and a function that reads one chunk (``block -> rows``). It knows, before the
epoch starts, which chunks the order touches, in which order each is first needed and how
many of its rows will be taken. A background thread reads the chunks in first-use order,
at most ``prefetch`` of them resident ahead of need; :meth:`take` returns the next batch's
rows (waiting for chunks still in flight) and drops every chunk whose rows have all been
taken. Each chunk is read once per epoch. Resident memory is the chunks between their first
and last use (about ``window`` per lane with the streamed order) plus the prefetched ones:
it does not grow with the number of samples.

A chunk's rows are an ``np.ndarray`` (dense logits ``[rows, C]``) or a tuple of arrays that
share their first dimension (a sparse kind's fields); :meth:`take` returns the same shape.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

from sortkd_cache.errors import ConfigError

__all__ = ["ChunkWindowReader", "Rows"]

Rows = Any  # np.ndarray, or a tuple of np.ndarray with the same first dimension


def _nbytes(rows: Rows) -> int:
    if isinstance(rows, tuple):
        return sum(int(r.nbytes) for r in rows)
    return int(rows.nbytes)


def _gather(parts: list[tuple[Rows, npt.NDArray[np.int64], npt.NDArray[np.int64]]], n: int) -> Rows:
    """Rows ``local`` of each chunk's payload placed at positions ``where`` of an n-row result."""
    first = parts[0][0]
    if isinstance(first, tuple):
        fields = []
        for f in range(len(first)):
            fields.append(_gather([(p[f], w, loc) for p, w, loc in parts], n))
        return tuple(fields)
    out = np.empty((n, *first.shape[1:]), dtype=first.dtype)
    for payload, where, local in parts:
        out[where] = payload[local]
    return out


class ChunkWindowReader:
    """Serve the rows of ``order`` (one rank's epoch order) batch by batch; see the module."""

    def __init__(
        self,
        read_block: Callable[[int], Rows],
        order: npt.ArrayLike,
        chunk_samples: int,
        prefetch: int = 4,
    ) -> None:
        if chunk_samples < 1 or prefetch < 1:
            raise ConfigError(f"bad chunk_samples {chunk_samples} or prefetch {prefetch}")
        self._read, self._chunk = read_block, chunk_samples
        self._order = np.asarray(order, dtype=np.int64).reshape(-1)
        blocks = self._order // chunk_samples
        uniq, first, counts = np.unique(blocks, return_index=True, return_counts=True)
        self._first_use = uniq[np.argsort(first, kind="stable")].tolist()
        self._left = dict(zip(uniq.tolist(), counts.tolist(), strict=True))
        self._prefetch = prefetch
        self._pos = 0  # next position of the order to be taken
        self._next = 0  # next index into first_use to submit
        self._futures: dict[int, Future[Rows]] = {}
        self._started: set[int] = set()  # chunks some of whose rows were taken
        self._pool = ThreadPoolExecutor(1, "sortkd-stream")
        self._lock = threading.Lock()
        self.resident_bytes = 0
        self.peak_bytes = 0
        self.blocks_read: list[int] = []
        self._top_up()

    # ---------------------------------------------------------------- loading
    def _load(self, block: int) -> Rows:
        rows = self._read(block)
        with self._lock:
            self.resident_bytes += _nbytes(rows)
            self.peak_bytes = max(self.peak_bytes, self.resident_bytes)
            self.blocks_read.append(block)
        return rows

    def _submit_next(self) -> None:
        block = self._first_use[self._next]
        self._next += 1
        self._futures[block] = self._pool.submit(self._load, block)

    def _top_up(self) -> None:
        """Queue chunks in first-use order while fewer than ``prefetch`` wait unused."""
        while self._next < len(self._first_use):
            if sum(1 for b in self._futures if b not in self._started) >= self._prefetch:
                return
            self._submit_next()

    # ---------------------------------------------------------------- serving
    @property
    def remaining(self) -> int:
        """Samples of the order not taken yet."""
        return len(self._order) - self._pos

    def take(self, idx: npt.ArrayLike) -> Rows:
        """The rows of ``idx``, which must be the next ``len(idx)`` samples of the order."""
        want = np.asarray(idx, dtype=np.int64).reshape(-1)
        expect = self._order[self._pos : self._pos + len(want)]
        if not np.array_equal(want, expect):
            raise ConfigError(
                f"streamed soft labels asked for samples out of the epoch's order at position "
                f"{self._pos} (the batches must follow the order the reader was given)"
            )
        self._pos += len(want)
        blocks = want // self._chunk
        parts = []
        for block in np.unique(blocks).tolist():
            while block not in self._futures:  # needed now: queue up to it, whatever the limit
                self._submit_next()
            payload = self._futures[block].result()
            self._started.add(block)
            where = np.flatnonzero(blocks == block)
            parts.append((payload, where, want[where] - block * self._chunk))
        out = _gather(parts, len(want)) if parts else np.zeros((0,))
        for block, count in zip(*np.unique(blocks, return_counts=True), strict=True):
            self._left[int(block)] -= int(count)
            if self._left[int(block)] == 0:
                self._evict(int(block))
        self._top_up()
        return out

    def _evict(self, block: int) -> None:
        self._started.discard(block)
        rows = self._futures.pop(block).result()
        with self._lock:
            self.resident_bytes -= _nbytes(rows)

    def close(self) -> None:
        """Stop reading ahead and drop every resident chunk."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        for block in list(self._futures):
            fut = self._futures.pop(block)
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                with self._lock:
                    self.resident_bytes -= _nbytes(fut.result())

    def __enter__(self) -> ChunkWindowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
