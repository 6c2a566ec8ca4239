"""The writing side of ``dump``'s unit loop: each finished (block, view) unit is checked
(finite logits, before and after narrowing to the store's dtype), scored (teacher accuracy),
and handed to a writer thread that truncates it to the sparse kind where the store is sparse
and writes it, overlapping the next forward pass. At most a few writes are in flight; leaving
the writer waits for every one, also when an error propagates, so chunks finished before a
failure are kept.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

import numpy as np
import torch

from sortkd_cache.errors import NonFiniteLogitsError
from sortkd_cache.store import CacheStore

__all__ = ["Unit", "UnitWriter", "check_finite"]

_MAX_PENDING_WRITES = 3

#: (block, view, augmentation params, logits on the host, CUDA event to wait on or None)
Unit = tuple[int, int, np.ndarray, torch.Tensor, Any]


def check_finite(logits: np.ndarray, start: int, view: int) -> None:
    bad = ~np.isfinite(logits)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        value = logits[row][bad[row]][0]
        raise NonFiniteLogitsError(
            f"teacher produced {value} logits for sample {start + row}, view {view}; "
            "dump stopped (chunks already written are kept)"
        )


def _done(f: Future[None]) -> bool:
    if f.done():
        f.result()
        return True
    return False


class UnitWriter:
    """Check, score and write finished units on two writer threads (a context manager)."""

    def __init__(self, store: CacheStore, labels: np.ndarray, dtype: str, bar: Any) -> None:
        self.store, self.labels, self.dtype, self.bar = store, labels, dtype, bar
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sortkd-write")
        self.pending: list[Future[None]] = []
        self.waited = 0.0  # seconds spent waiting for the accelerator's results

    def __enter__(self) -> UnitWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.pool.shutdown(wait=True)
        if kind is None:
            for f in self.pending:
                f.result()

    def finish(self, unit: Unit) -> None:
        """Check a launched unit's logits and queue its write (waits for a free slot)."""
        block, view, params, logits, event = unit
        start, stop = self.store.block_bounds(block)
        t0 = time.perf_counter()
        if event is not None:
            event.synchronize()
        self.waited += time.perf_counter() - t0
        out = logits.numpy()
        check_finite(out, start, view)
        with np.errstate(over="ignore"):  # overflow to inf is reported just below
            values = out.astype(self.dtype)
        check_finite(values, start, view)
        labels = self.labels[start:stop]
        correct = int((values.argmax(axis=1) == labels).sum())
        self.pending = [f for f in self.pending if not _done(f)]
        while len(self.pending) >= _MAX_PENDING_WRITES:
            self.pending.pop(0).result()
        self.pending.append(
            self.pool.submit(self._write, block, view, values, params, correct, labels)
        )
        self.bar.update(stop - start)

    def _write(
        self, block: int, view: int, values: np.ndarray, params: np.ndarray, n: int, y: np.ndarray
    ) -> None:
        """In a writer thread, overlapping the next forward: truncate to the sparse kind
        (no dense chunk is ever written), then write."""
        start = self.store.block_bounds(block)[0]
        rows, fid = self.store.layout.encode(values, y, at=(start, view))
        self.store.write_chunk("raw", block, view, rows, params=params, count=n, fidelity=fid)
