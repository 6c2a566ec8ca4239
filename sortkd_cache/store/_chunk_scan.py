"""One scan over the written chunks of sparse kinds, shared by the sparse layouts' checks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sortkd_cache.errors import CorruptChunkError
from sortkd_cache.store._layout import logits_path
from sortkd_cache.store._problem import Problem
from sortkd_cache.store._sparse import sparse_path

if TYPE_CHECKING:
    from sortkd_cache.store._logits_layout import LayoutStore

#: a layout's row check: (rows of one chunk, their labels) -> what is wrong, first first
RowCheck = Callable[[Any, np.ndarray], list[str]]


def chunk_row_problems(
    store: LayoutStore,
    kinds: Sequence[str],
    read: Callable[[str], Any],
    check: RowCheck,
    first: str = "ids",
) -> list[Problem]:
    """Per written (block, view) chunk of each kind (one whose ``first`` array exists),
    `check` over its rows read unchecked (verify reports a bad row instead of stopping at
    it); one problem per kind at most."""
    out, labels = [], store.labels
    for kind in kinds:
        if not store.has_array(sparse_path(kind, first)):
            continue
        data, done = read(kind), store.progress(kind) >= 0
        for block, view in zip(*np.nonzero(done), strict=True):
            start, stop = store.block_bounds(int(block))
            try:
                rows = data[start:stop, int(view)]
            except CorruptChunkError:
                continue  # reported chunk by chunk already
            found = check(rows, labels[start:stop])
            if found:
                where = f"block {int(block)}, view {int(view)}"
                out.append(Problem("content", f"{where}: {found[0]}", logits_path(kind)))
                break
    return out
