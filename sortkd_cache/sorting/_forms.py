"""The sparse forms of ``sort`` and ``swap``: on top-K rows and on sampled rows.

**Top-K rows** (:func:`top_k_form`). Both methods only permute a row's values, and only among
the classes ranked at or above the label, plus (``swap``) the row's first maximum. Two cases:

* label in the top K: every class ranked above it is kept, so the method moves values inside
  the kept entries only; the kept set is unchanged.
* label outside the top K: the label takes the maximum. With ``sort`` each top-K class moves
  down one rank and the one at rank K-1 leaves the top K; with ``swap`` the first maximum takes
  the label's value and leaves. Either way the new top K is the label plus K-1 of the old
  top-K classes, holding the K largest values, which are known.

So the dense kernel runs on a compact row of the kept entries (plus the label's entry when it
is outside the top K) in class-id order, which keeps the tie rule (lower id first), and the K
largest entries of the result are kept. The complement of the top K holds the same multiset
of values before and after.

**Sampled rows** (:func:`sort_draws`). A draw is a rank of the row's descending values; a
method that permutes values keeps each draw's value and hands it to the class holding that
rank afterwards. ``sort`` gives rank 0 to the label and rank k (1 <= k <= the label's rank)
to the class that held rank k - 1: the entry's ``up`` class. ``swap`` would need the row's
first maximum for a label drawn without it; it declares no sampled form.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from sortkd_cache.sorting._method import NumpyKernel, SparseForm

__all__ = ["order_key", "rank_order", "sort_draws", "top_k_form"]

_INT = {2: np.int16, 4: np.int32, 8: np.int64}
_IntArr = NDArray[np.int64]


def order_key(values: NDArray[Any]) -> _IntArr:
    """IEEE-754 totalOrder as int64 keys: key order is totalOrder (-0.0 below +0.0)."""
    v = np.ascontiguousarray(values)
    b = v.view(_INT[v.dtype.itemsize]).astype(np.int64)
    top = np.int64((1 << (v.dtype.itemsize * 8 - 1)) - 1)
    return np.where(b < 0, -(b & top) - 1, b)


def rank_order(values: NDArray[Any], ids: NDArray[Any]) -> _IntArr:
    """Per row, the positions of ``values`` in rank order: descending, ties lower id first."""
    key = order_key(values)
    return np.lexsort((ids.astype(np.int64), -key), axis=-1).astype(np.int64)


def _compact(
    ids: _IntArr, values: NDArray[Any], y: _IntArr
) -> tuple[_IntArr, NDArray[Any], _IntArr]:
    """Entries in class-id order and the label's position among them."""
    by_id = np.argsort(ids, axis=1, kind="stable")
    cids = np.take_along_axis(ids, by_id, axis=1)
    cvals = np.take_along_axis(values, by_id, axis=1)
    return cids, cvals, (cids == y[:, None]).argmax(axis=1).astype(np.int64)


def _ranked(
    kernel: NumpyKernel, ids: _IntArr, values: NDArray[Any], y: _IntArr, k: int
) -> tuple[_IntArr, NDArray[Any]]:
    cids, cvals, cy = _compact(ids, values, y)
    out = kernel(np.ascontiguousarray(cvals), cy)
    order = rank_order(out, cids)[:, :k]
    return np.take_along_axis(cids, order, axis=1), np.take_along_axis(out, order, axis=1)


def top_k_form(kernel: NumpyKernel) -> SparseForm:
    """The exact top-K form of a dense ``kernel`` that permutes values only among the classes
    ranked at or above the label and the row's first maximum (``sort``, ``swap``)."""

    def form(
        ids: _IntArr, values: NDArray[Any], label_values: NDArray[Any], y: _IntArr
    ) -> tuple[_IntArr, NDArray[Any]]:
        k = ids.shape[1]
        out_ids, out_vals = ids.copy(), values.copy()
        hit = (ids == y[:, None]).any(axis=1)
        inside, outside = np.flatnonzero(hit), np.flatnonzero(~hit)
        if inside.size:
            got = _ranked(kernel, ids[inside], values[inside], y[inside], k)
            out_ids[inside], out_vals[inside] = got
        if outside.size:
            wide_ids = np.concatenate([ids[outside], y[outside, None]], axis=1)
            lab = label_values[outside, None].astype(values.dtype)
            wide_vals = np.concatenate([values[outside], lab], axis=1)
            out_ids[outside], out_vals[outside] = _ranked(
                kernel, wide_ids, wide_vals, y[outside], k
            )
        return out_ids, out_vals

    return form


def sort_draws(ids: _IntArr, up: _IntArr, y: _IntArr) -> _IntArr:
    """``sort`` on sampled rows: each draw ranked at or above the label moves to the class
    ranked directly above it (the first maximum's to the label): its ``up``."""
    return up.copy()
