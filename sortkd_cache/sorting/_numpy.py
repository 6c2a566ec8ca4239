"""NumPy kernels for the sorting mechanism, on validated 2-D inputs ``z [N, C]``, ``y [N]``.

Bit-exact with the reference and with the torch kernels (``_torch.py`` is a step-by-step
twin). The work is proportional to what moves:

1. Ranking uses an integer key of each value's bit pattern (``_key``): integer order is float
   order, and -0.0 and +0.0 share a key (they rank as equal: lower index first).
2. A gate finds the rows where some class may rank above the label: the largest bit pattern
   among the other classes is compared with the label's (for positive values bit order is key
   order); rows whose label has its sign bit set or is +0.0 are always gated.
3. For gated rows only: the mask of classes ranked above the label (greater key, or equal key
   with a lower index), those entries stable-sorted per row by descending key, and a shift: the
   label takes the row maximum, each class above it the value of the next one down.
4. Signed zeros: -0.0 and +0.0 are the only equal values with different bits, so for rows
   holding both, the output bits depend on how ``v`` (the row's values in descending order)
   orders them. Those rows (rare in real logits) go through :func:`literal_rows`, which
   reproduces the reference cases: float16 in IEEE total order (+0.0 first), float32/64 as
   numpy's float sort leaves them (see :func:`_descending_values`).

NaN is rejected upstream (``NonFiniteLogitsError`` at dump time). Were one present, it ranks
by its bit pattern (a NaN with a clear sign bit above +inf, one with the sign bit set below
-inf): the result is still a permutation of the row, identical across backends.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["label_rank_2d", "sort_2d", "swap_2d"]

_Arr = NDArray[Any]
_IntArr = NDArray[np.int64]

_INT: dict[np.dtype[Any], type[np.signedinteger[Any]]] = {
    np.dtype(np.float16): np.int16,
    np.dtype(np.float32): np.int32,
    np.dtype(np.float64): np.int64,
}


def _bits(z: _Arr) -> _Arr:
    """The bit patterns as same-width signed integers (a view)."""
    return z.view(_INT[z.dtype])


def _key(b: _Arr) -> _Arr:
    """Ranking key of bit patterns: integer order is float order, -0.0 == +0.0."""
    sign = b >> (b.dtype.itemsize * 8 - 1)  # -1 where the sign bit is set, else 0
    key: _Arr = (b ^ (sign & np.iinfo(b.dtype).max)) - sign
    return key


def _gate(z: _Arr, y: _IntArr, scratch: _Arr) -> _IntArr:
    """Rows where a class may rank above the label (a superset; exact rows follow).

    ``scratch`` is a writable copy of ``z``; it is restored before returning.
    """
    n, c = z.shape
    flat = _bits(scratch).reshape(-1)
    at_label = np.arange(n) * c + y
    by = flat.take(at_label)
    flat.put(at_label, np.iinfo(flat.dtype).min)
    others = flat.reshape(n, c).max(axis=1)
    flat.put(at_label, by)
    return np.flatnonzero((by <= 0) | (others >= by))


def _above_mask(k: _Arr, ys: _IntArr) -> NDArray[np.bool_]:
    """Classes ranked above the label: greater key, or equal key with a lower index."""
    n, c = k.shape
    ky = k.reshape(-1).take(np.arange(n) * c + ys)
    lower = np.arange(c)[None, :] < ys[:, None]
    mask: NDArray[np.bool_] = k > ky[:, None] - lower.astype(k.dtype)
    return mask


def _rank_order(rr: _IntArr, kk: _Arr) -> _IntArr:
    """Permutation of the entries to (row ascending, key descending, index ascending).

    The entries come in (row, index) order, so a stable sort on (row, -key) suffices.
    """
    nbits = kk.dtype.itemsize * 8
    if nbits <= 32:  # keys lie in (-2**(nbits-1), 2**(nbits-1)): pack them with the row
        packed = (rr << nbits) | (np.int64(1 << (nbits - 1)) - kk.astype(np.int64))
        return np.argsort(packed, kind="stable")
    return np.lexsort((-kk, rr))


def _shift_rows(s: _Arr, ys: _IntArr) -> None:
    """Apply the mechanism in place to every row of ``s`` (rows with rank 0 are untouched)."""
    c = s.shape[1]
    k = _key(_bits(s))
    rr, cc = np.nonzero(_above_mask(k, ys))  # by row, then index
    if rr.size == 0:
        return
    at = rr * c + cc
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


def mixed_zero_rows(z: _Arr) -> _IntArr:
    """Rows holding both -0.0 and +0.0 (the only equal values with different bits)."""
    flat = _bits(z).reshape(-1)
    neg_zero = np.iinfo(flat.dtype).min  # the bit pattern of -0.0
    if flat.min() != neg_zero:
        return np.zeros(0, np.int64)
    rows = np.unique(np.flatnonzero(flat == neg_zero) // z.shape[1])
    has_pos = (_bits(z[rows]) == 0).any(axis=1)
    return np.asarray(rows[has_pos], dtype=np.int64)


def _descending_values(z: _Arr) -> _Arr:
    """``v``, each row's values in descending order, with the reference's signed zeros.

    Only the signs of zeros depend on this choice. The reference cases fix them: float16
    rows list +0.0 before -0.0 (IEEE-754 total order, a bitwise permutation of the row);
    float32/float64 rows follow numpy's own float sort (its vectorised x86 sort may return a
    zero with either sign, so such rows are a permutation by value, not always by bits).
    """
    if z.dtype == np.float16:
        b = _bits(z).astype(np.int64)
        total = np.where(b < 0, -(b & 0x7FFF) - 1, b)  # IEEE total order: -0.0 below +0.0
        return np.take_along_axis(z, np.argsort(-total, axis=1, kind="stable"), axis=1)
    return np.sort(z, axis=1)[:, ::-1]


def literal_rows(z: _Arr, y: _IntArr) -> _Arr:
    """The definition applied literally: ``out[order[k]] = v[k]``.

    Used for rows holding both signed zeros, whose output bits depend on how ``v`` (the row's
    values in descending order) orders the two zeros; see :func:`_descending_values`.
    """
    n, c = z.shape
    k = _key(_bits(z)).astype(np.int64)
    idx = np.argsort(-k, axis=1, kind="stable")  # descending value, lower index first
    v = _descending_values(z)
    keep = idx != y[:, None]
    order = np.empty_like(idx)
    order[:, 0] = y
    order[:, 1:] = idx[keep].reshape(n, c - 1)
    out = np.empty_like(z)
    np.put_along_axis(out, order, v, axis=1)
    return out


def _fix_zeros(z: _Arr, y: _IntArr, out: _Arr) -> None:
    rows = mixed_zero_rows(z)
    if rows.size:
        out[rows] = literal_rows(z[rows], y[rows])


def sort_2d(z: _Arr, y: _IntArr) -> _Arr:
    """The sorting mechanism over the rows of ``z``; a new array."""
    out = z.copy()
    rows = _gate(z, y, out)
    if rows.size:
        s = z[rows]
        _shift_rows(s, y[rows])
        out[rows] = s
    _fix_zeros(z, y, out)
    return out


def first_argmax(z: _Arr) -> _IntArr:
    """First index of the row maximum (-0.0 == +0.0)."""
    return np.asarray(_key(_bits(z)).argmax(axis=1), dtype=np.int64)


def swap_2d(z: _Arr, y: _IntArr) -> _Arr:
    """Exchange the label's value with the row maximum's (first index); a new array."""
    out = z.copy()
    rows = _gate(z, y, out)
    if rows.size:
        c = z.shape[1]
        at_max = rows * c + first_argmax(z[rows])
        at_label = rows * c + y[rows]
        flat_in, flat_out = z.reshape(-1), out.reshape(-1)
        flat_out.put(at_max, flat_in.take(at_label))
        flat_out.put(at_label, flat_in.take(at_max))
    return out


def label_rank_2d(z: _Arr, y: _IntArr) -> _IntArr:
    """How many classes rank above the label (0: the row is already sorted)."""
    rank = np.zeros(z.shape[0], np.int64)
    rows = _gate(z, y, z.copy())
    if rows.size:
        rank[rows] = _above_mask(_key(_bits(z[rows])), y[rows]).sum(axis=1)
    return rank
