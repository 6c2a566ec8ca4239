"""``verify``: every derived kind (``sort``, ``swap``) is its method applied to the raw rows.

A derived row must be bit for bit what its method gives for the raw row of the same
(sample, view) and label: a dense row the public kernel's output, a sparse row
(:meth:`~sortkd_cache.store.LogitsLayout.sort_rows`) the exact sparse form of it (ids, values
and stats). A row edited after ``sort`` (values swapped, a chunk rewritten with a valid
checksum) is named, sample and view, instead of being trained on.

The check walks the (block, view) chunks a finished sort recorded, one chunk at a time: the
raw chunk is read once and each derived kind of that chunk is compared with the method
applied to it, so memory is bounded by a few chunks whatever the store's size.
:func:`rows_not_derived` is the per-method comparison (what a sort-method object would
answer), :func:`derived_problems` the walk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from sortkd_cache.errors import CorruptChunkError, StoreError
from sortkd_cache.store._layout import logits_path
from sortkd_cache.store._problem import Problem
from sortkd_cache.store._zipcheck import ZipMemberError

if TYPE_CHECKING:
    from sortkd_cache.store._logits_layout import KindReader, LogitsLayout, Rows
    from sortkd_cache.store._store import CacheStore

__all__ = ["derived_problems", "rows_not_derived"]

_SHOWN = 5  # rows named per chunk (the count says how many more)


def _bits(a: np.ndarray) -> np.ndarray:
    """The array's bit patterns, rows first (floats compared bitwise: -0.0 != +0.0)."""
    a = np.ascontiguousarray(a)
    if a.dtype.kind == "f":
        a = a.view(f"u{a.dtype.itemsize}")
    return a.reshape(a.shape[0], -1)


def rows_not_derived(
    layout: LogitsLayout, method: str, raw: Rows, stored: Rows, labels: np.ndarray
) -> np.ndarray:
    """Indices (int64) of the rows of ``stored`` that are not ``method`` applied to the rows
    of ``raw`` with ``labels``, compared bitwise in the layout's own form."""
    expected, _, _ = layout.sort_rows(method, raw, labels)
    want, got = layout.pack(expected), layout.pack(stored)
    n = len(labels)
    bad = np.zeros(n, dtype=bool)
    for w, g in zip(want, got, strict=True):
        if w.shape != g.shape or w.dtype != g.dtype:
            return np.arange(n, dtype=np.int64)
        bad |= (_bits(w) != _bits(g)).any(axis=1)
    return np.flatnonzero(bad).astype(np.int64)


def derived_problems(store: CacheStore, kinds: Sequence[str]) -> list[Problem]:
    """One problem per (kind, block, view) chunk holding rows that are not the kind's method
    applied to the raw rows, naming them. Chunks that cannot be read are skipped: their
    damage is reported chunk by chunk by the scan."""
    derived = [k for k in kinds if k != "raw" and store.has_array(logits_path(k))]
    if not derived or not store.has_array(logits_path("raw")):
        return []
    try:
        layout, labels = store.layout, store.labels
        readers = {k: layout.reader(store, k) for k in ["raw", *derived]}
        written = {k: store.progress(k) >= 0 for k in ["raw", *derived]}
    except (StoreError, ZipMemberError):  # labels or progress unreadable: reported already
        return []
    problems: list[Problem] = []
    for block, view in np.ndindex(*written["raw"].shape):
        kinds_here = [k for k in derived if written[k][block, view]]
        if not kinds_here or not written["raw"][block, view]:
            continue
        raw = _read(readers["raw"], block, view)
        if raw is None:
            continue
        start, stop = store.block_bounds(block)
        for kind in kinds_here:
            stored = _read(readers[kind], block, view)
            if stored is None:
                continue
            bad = rows_not_derived(layout, kind, raw, stored, labels[start:stop])
            if bad.size:
                problems.append(_problem(kind, block, view, start, bad))
    return problems


def _read(reader: KindReader, block: int, view: int) -> Rows | None:
    try:
        rows: Rows = reader.read_block(block, view)
        return rows
    except (CorruptChunkError, ZipMemberError):
        return None


def _problem(kind: str, block: int, view: int, start: int, bad: np.ndarray) -> Problem:
    samples = ", ".join(str(start + int(i)) for i in bad[:_SHOWN])
    more = f" and {bad.size - _SHOWN} more" if bad.size > _SHOWN else ""
    which = f"sample {samples}" if bad.size == 1 else f"samples {samples}{more}"
    return Problem(
        "content",
        f"block {block}, view {view}: not `{kind}` of the raw logits in the row of "
        f"{which} (edited after sort?)",
        logits_path(kind),
    )
