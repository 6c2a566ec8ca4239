"""``sort`` and ``swap`` on sparse rows, exact on every kept entry.

Both methods only permute a row's values, and they only move values among the classes ranked
at or above the label, plus (``swap``) the row's first maximum. Two cases per row:

* **label in the top K.** Every class ranked above the label is in the top K, so the method
  moves values inside the kept entries only; the kept set is unchanged.
* **label outside the top K.** The label takes the maximum. With ``sort`` the top-K classes
  each move down one rank; the one at rank K-1 takes the (K+1)-th value, which is not stored,
  and leaves the top K. With ``swap`` the first maximum takes the label's value and leaves the
  top K. Either way the new top K is the label plus K-1 of the old top-K classes, holding the
  K largest values, which are known.

So the result is computed by running the public kernel (:func:`sortkd_cache.sorting.sort_logits`
or ``swap_logits``) on a compact row of the kept entries (plus the label's entry when it is
outside the top K) in class-id order, which keeps the tie rule (lower class id first), and
keeping the K largest entries of the result. In both cases the complement of the top K holds
the same multiset of values before and after, so the row maximum, mean, std and every tail
column are unchanged: only the ``label`` column changes (to the maximum).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from sortkd_cache.errors import ConfigError
from sortkd_cache.sorting import get_method
from sortkd_cache.sparse._compress import rank_order
from sortkd_cache.sparse._spec import SparseRows

__all__ = ["apply_sparse", "label_positions"]


def label_positions(ids: NDArray[Any], y: NDArray[Any]) -> NDArray[np.int64]:
    """Per row, the position of the label among ``ids``, or -1 when it is not kept."""
    hit = ids.astype(np.int64) == np.asarray(y, dtype=np.int64)[:, None]
    return np.where(hit.any(axis=1), hit.argmax(axis=1), -1).astype(np.int64)


def _compact(
    ids: NDArray[np.int64], values: NDArray[Any], y: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[Any], NDArray[np.int64]]:
    """Entries in class-id order and the label's position among them."""
    by_id = np.argsort(ids, axis=1, kind="stable")
    cids = np.take_along_axis(ids, by_id, axis=1)
    cvals = np.take_along_axis(values, by_id, axis=1)
    return cids, cvals, (cids == y[:, None]).argmax(axis=1).astype(np.int64)


def _ranked(ids: NDArray[np.int64], values: NDArray[Any], k: int) -> tuple[NDArray[Any], ...]:
    order = rank_order(values, ids)[:, :k]
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(values, order, axis=1)


def apply_sparse(
    method: str, rows: SparseRows, y: NDArray[Any], label_column: int = 0
) -> SparseRows:
    """``method`` ('sort' or 'swap') applied to 2-D sparse rows with labels ``y`` [N]."""
    if rows.ids.ndim != 2:
        raise ConfigError(f"expected sparse rows [N, K], got ids {list(rows.ids.shape)}")
    kernel = get_method(method)
    yy = np.asarray(y, dtype=np.int64)
    ids = rows.ids.astype(np.int64)
    n, k = ids.shape
    out_ids = ids.copy()
    out_vals = rows.values.copy()
    pos = label_positions(ids, yy)
    inside = np.flatnonzero(pos >= 0)
    if inside.size:
        cids, cvals, cy = _compact(ids[inside], rows.values[inside], yy[inside])
        new_ids, new_vals = _ranked(cids, kernel(cvals, cy), k)
        out_ids[inside], out_vals[inside] = new_ids, new_vals
    outside = np.flatnonzero(pos < 0)
    if outside.size:
        label_vals = rows.stats[outside, label_column : label_column + 1]
        wide_ids = np.concatenate([ids[outside], yy[outside, None]], axis=1)
        wide_vals = np.concatenate([rows.values[outside], label_vals], axis=1)
        cids, cvals, cy = _compact(wide_ids, wide_vals, yy[outside])
        new_ids, new_vals = _ranked(cids, kernel(cvals, cy), k)
        out_ids[outside], out_vals[outside] = new_ids, new_vals
    stats = rows.stats.copy()
    at = label_positions(out_ids, yy)
    stats[:, label_column] = out_vals[np.arange(n), at]
    return SparseRows(out_ids.astype(rows.ids.dtype), out_vals, stats)
