"""A sort method on sparse (top-K) rows, exact on every kept entry.

Each :class:`~sortkd_cache.sorting.SortMethod` carries its top-K form (``sort`` and ``swap``:
:func:`sortkd_cache.sorting.top_k_form`, which says why it is exact) or declares that it has
none; :func:`apply_sparse` calls it and keeps the stats consistent. The complement of the top
K holds the same multiset of values before and after, so the row maximum, mean, std and every
tail column are unchanged: only the ``label`` column changes (to the label's new value).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from sortkd_cache.errors import ConfigError
from sortkd_cache.sorting import get_method
from sortkd_cache.sparse._spec import SparseRows

__all__ = ["apply_sparse", "label_positions"]


def label_positions(ids: NDArray[Any], y: NDArray[Any]) -> NDArray[np.int64]:
    """Per row, the position of the label among ``ids``, or -1 when it is not kept."""
    hit = ids.astype(np.int64) == np.asarray(y, dtype=np.int64)[:, None]
    return np.where(hit.any(axis=1), hit.argmax(axis=1), -1).astype(np.int64)


def apply_sparse(
    method: str, rows: SparseRows, y: NDArray[Any], label_column: int = 0
) -> SparseRows:
    """``method`` (a registered name) applied to 2-D sparse rows with labels ``y`` [N]."""
    if rows.ids.ndim != 2:
        raise ConfigError(f"expected sparse rows [N, K], got ids {list(rows.ids.shape)}")
    kind = get_method(method)
    yy = np.asarray(y, dtype=np.int64)
    label_values = rows.stats[:, label_column]
    out_ids, out_vals = kind.on_sparse(rows.ids.astype(np.int64), rows.values, label_values, yy)
    stats = rows.stats.copy()
    at = label_positions(out_ids, yy)
    stats[:, label_column] = out_vals[np.arange(len(yy)), at]
    return SparseRows(out_ids.astype(rows.ids.dtype), out_vals, stats)
