"""NumPy kernels for the sorting mechanism, on validated 2-D inputs ``z [N, C]``, ``y [N]``.

Every comparison is in IEEE-754 totalOrder, through an integer key of each value's bit pattern
(:func:`_key`): integer order is totalOrder, so -0.0 ranks below +0.0 and equal keys are
identical bit patterns. Outputs are gathered from the input's bits, so every output row is a
bitwise permutation of its input row. ``_torch.py`` is a twin (it always takes the sparse
shift below).

The work is proportional to what moves:

1. A gate finds the rows where some class may rank above the label: the largest bit pattern
   among the other classes is compared with the label's (for patterns with a clear sign bit,
   bit order is key order); rows whose label has its sign bit set are always gated.
2. For gated rows only, the mask of classes ranked above the label (greater key, or equal key
   with a lower index) and a shift: the label takes the row maximum, each class above it the
   value of the next one down, the last one the label's value. Classes ranked below the label
   keep their bits. When few entries move (teacher-like rows) the sparse shift stable-sorts
   just the masked entries; when many do (labels deep in the ranking) the dense shift sorts
   every gated row once, packing key and class index into one integer. Both give the same
   bits (``SPARSE_BELOW`` picks; the tests run both).

The same pass yields each row's label rank and the index of its first totalOrder maximum (the
statistics of the ``sort`` stage): see :func:`sort_with_stats`.

NaN is rejected upstream (``NonFiniteLogitsError`` at dump time). Were one present, it ranks
by its bit pattern like any value (a NaN with a clear sign bit above +inf, one with the sign
bit set below -inf): the result still follows the rule, identical across backends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Applied",
    "first_argmax",
    "label_rank_2d",
    "sort_2d",
    "sort_with_stats",
    "swap_2d",
    "swap_with_stats",
]

_Arr = NDArray[Any]
_IntArr = NDArray[np.int64]

_INT: dict[np.dtype[Any], type[np.signedinteger[Any]]] = {
    np.dtype(np.float16): np.int16,
    np.dtype(np.float32): np.int32,
    np.dtype(np.float64): np.int64,
}


class Applied(NamedTuple):
    """A method's output with the statistics of its input rows."""

    out: _Arr  # the transformed rows, same dtype and shape as the input
    rank: _IntArr  # [N] classes ranked above the label (0: the label holds the maximum)
    top: _IntArr  # [N] index of the row's first totalOrder maximum


def _bits(z: _Arr) -> _Arr:
    """The bit patterns as same-width signed integers (a view)."""
    return z.view(_INT[z.dtype])


def _key(b: _Arr) -> _Arr:
    """totalOrder key of signed bit patterns: flip the magnitude bits where the sign is set."""
    sign = b >> (b.dtype.itemsize * 8 - 1)  # -1 where the sign bit is set, else 0
    key: _Arr = b ^ (sign & np.iinfo(b.dtype).max)
    return key


def _gate(z: _Arr, y: _IntArr, scratch: _Arr) -> _IntArr:
    """Rows where a class may rank above the label (a superset of them).

    ``scratch`` is a writable copy of ``z``; it is restored before returning.
    """
    n, c = z.shape
    flat = _bits(scratch).reshape(-1)
    at_label = np.arange(n) * c + y
    by = flat.take(at_label)
    flat.put(at_label, np.iinfo(flat.dtype).min)
    others = flat.reshape(n, c).max(axis=1)
    flat.put(at_label, by)
    return np.flatnonzero((by < 0) | (others >= by))


def _above_mask(k: _Arr, ys: _IntArr) -> NDArray[np.bool_]:
    """Classes ranked above the label: greater key, or equal key with a lower index."""
    n, c = k.shape
    ky = k.reshape(-1).take(np.arange(n) * c + ys)[:, None]
    lower = np.arange(c)[None, :] < ys[:, None]
    mask: NDArray[np.bool_] = k > ky
    mask |= lower & (k == ky)
    return mask


def _rank_order(rr: _IntArr, kk: _Arr) -> _IntArr:
    """Permutation of the entries to (row ascending, key descending, index ascending).

    The entries come in (row, index) order, so a stable sort on (row, -key) suffices.
    """
    nbits = kk.dtype.itemsize * 8
    if nbits <= 32:  # pack the row with the flipped key, which lies in [0, 2**nbits)
        flipped = np.int64((1 << (nbits - 1)) - 1) - kk.astype(np.int64)
        return np.argsort((rr << nbits) | flipped, kind="stable")
    return np.lexsort((~kk, rr))  # ~k = -(k + 1): descending keys, no overflow


def _shift_sparse(s: _Arr, k: _Arr, mask: NDArray[np.bool_], ys: _IntArr) -> _IntArr:
    """The shift over the masked entries only (few classes above the label); first maxima."""
    c = s.shape[1]
    top = ys.copy()
    at = np.flatnonzero(mask)  # flat positions, by row, then index
    if at.size == 0:
        return top
    rr = at // c
    order = _rank_order(rr, k.reshape(-1).take(at))
    rr, at = rr[order], at[order]
    flat = s.reshape(-1)
    vals = flat.take(at)
    brk = rr[1:] != rr[:-1]
    last = np.append(brk, True)
    first = np.insert(brk, 0, True)
    nxt = np.empty_like(vals)
    nxt[:-1] = vals[1:]
    tail = rr[last]
    nxt[last] = flat.take(tail * c + ys[tail])  # the last class above takes the label's value
    head = rr[first]
    flat.put(head * c + ys[head], vals[first])  # the label takes the maximum
    flat.put(at, nxt)
    top[head] = at[first] - head * c
    return top


def _sort_desc(k: _Arr) -> tuple[_Arr, _Arr]:
    """Each row's keys in descending order (equal keys: lower index first), and their indices."""
    c = k.shape[1]
    nbits, cbits = k.dtype.itemsize * 8, max(1, (c - 1).bit_length())
    if nbits + cbits > 63:  # float64: an index-stable argsort of the flipped keys
        idx = np.argsort(~k, axis=1, kind="stable")
        return np.take_along_axis(k, idx, axis=1), idx
    wide = np.int32 if nbits + cbits <= 31 else np.int64
    packed = (~k).astype(wide) << cbits  # ascending packed order: key descending, index up
    packed |= np.arange(c, dtype=wide)
    packed.sort(axis=1)  # the packed values are distinct: any sort is stable here
    keys: _Arr = ~(packed >> cbits).astype(k.dtype)
    return keys, packed & wide((1 << cbits) - 1)


def _shift_dense(s: _Arr, k: _Arr, rank: _IntArr) -> _IntArr:
    """The shift through a full sort of every row (many classes above the label); first maxima.

    In descending order the label sits at ``rank``; positions before it take the next value
    down, the label the first one, the rest keep theirs.
    """
    m, c = s.shape
    keys, idx = _sort_desc(k)
    v = _key(keys)  # the key is an involution: these are the values' bits, descending
    shifted = np.empty_like(v)
    shifted[:, :-1] = v[:, 1:]
    np.copyto(shifted, v, where=np.arange(c) > rank[:, None])
    starts = np.arange(m) * c
    shifted.reshape(-1)[starts + rank] = v[:, 0]
    _bits(s).reshape(-1)[idx + starts[:, None]] = shifted
    return np.asarray(idx[:, 0], dtype=np.int64)


SPARSE_BELOW = 0.2
"""Gated rows take the sparse shift while under this fraction of their entries move."""


def _shift_rows(s: _Arr, ys: _IntArr) -> tuple[_IntArr, _IntArr]:
    """Apply the mechanism in place to the rows of ``s``; their ranks and first maxima."""
    k = _key(_bits(s))
    mask = _above_mask(k, ys)
    rank = np.count_nonzero(mask, axis=1).astype(np.int64)
    if rank.sum() < SPARSE_BELOW * mask.size:
        return rank, _shift_sparse(s, k, mask, ys)
    return rank, _shift_dense(s, k, rank)


def _first_argmax(z: _Arr) -> _IntArr:
    """First index of the row's totalOrder maximum."""
    return np.asarray(_key(_bits(z)).argmax(axis=1), dtype=np.int64)


def _swap_rows(s: _Arr, ys: _IntArr, with_rank: bool) -> tuple[_IntArr, _IntArr]:
    """Exchange each row's label value with its first maximum's, in place."""
    m, c = s.shape
    top = _first_argmax(s)
    rank = (
        _above_mask(_key(_bits(s)), ys).sum(axis=1, dtype=np.int64)
        if with_rank
        else np.zeros(m, np.int64)
    )
    flat = s.reshape(-1)
    at_max, at_label = np.arange(m) * c + top, np.arange(m) * c + ys
    v_max, v_label = flat.take(at_max), flat.take(at_label)
    flat.put(at_max, v_label)
    flat.put(at_label, v_max)
    return rank, top


def _apply_2d(
    z: _Arr, y: _IntArr, shift: Callable[[_Arr, _IntArr], tuple[_IntArr, _IntArr]]
) -> Applied:
    """``shift`` over the gated rows of ``z`` (a new array), with their statistics."""
    out = z.copy()
    rank = np.zeros(z.shape[0], np.int64)
    top = y.astype(np.int64, copy=True)  # ungated rows: the label is the first maximum
    rows = _gate(z, y, out)
    if rows.size:
        s = z[rows]
        rank[rows], top[rows] = shift(s, y[rows])
        out[rows] = s
    return Applied(out, rank, top)


def sort_with_stats(z: _Arr, y: _IntArr) -> Applied:
    """The sorting mechanism over the rows of ``z`` (a new array), with their statistics."""
    return _apply_2d(z, y, _shift_rows)


def swap_with_stats(z: _Arr, y: _IntArr) -> Applied:
    """The swap over the rows of ``z`` (a new array), with their statistics."""
    return _apply_2d(z, y, lambda s, ys: _swap_rows(s, ys, True))


def sort_2d(z: _Arr, y: _IntArr) -> _Arr:
    """The sorting mechanism over the rows of ``z``; a new array."""
    return _apply_2d(z, y, _shift_rows).out


def swap_2d(z: _Arr, y: _IntArr) -> _Arr:
    """Exchange the label's value with the row's first maximum's; a new array."""
    return _apply_2d(z, y, lambda s, ys: _swap_rows(s, ys, False)).out


def first_argmax(z: _Arr) -> _IntArr:
    """First index of each row's totalOrder maximum."""
    return _first_argmax(z)


def label_rank_2d(z: _Arr, y: _IntArr) -> _IntArr:
    """How many classes rank above the label (0: the row is already sorted)."""
    rank = np.zeros(z.shape[0], np.int64)
    rows = _gate(z, y, z.copy())
    if rows.size:
        rank[rows] = _above_mask(_key(_bits(z[rows])), y[rows]).sum(axis=1)
    return rank
