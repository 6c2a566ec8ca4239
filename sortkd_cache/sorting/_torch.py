"""Torch kernels for the sorting mechanism: the twin of ``_numpy.py`` (read its docstring).

Every step stays on the input's device (CPU or CUDA, no numpy round trip) and is
deterministic: integer keys for every sort (``stable=True``), writes to distinct positions
only. Results equal the numpy kernels bit for bit. The public API runs CPU tensors of the
dtypes in ``NUMPY_TWINS`` through the numpy kernels (zero-copy), which are faster on CPU;
these kernels serve CUDA tensors and bfloat16.
"""

from __future__ import annotations

import torch

__all__ = ["NUMPY_TWINS", "first_argmax", "label_rank_2d", "sort_2d", "swap_2d"]

NUMPY_TWINS = (torch.float16, torch.float32, torch.float64)
"""CPU tensors of these dtypes run the (faster, bit-identical) numpy kernels instead."""

_INT: dict[torch.dtype, torch.dtype] = {
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
    torch.float32: torch.int32,
    torch.float64: torch.int64,
}


def _bits(z: torch.Tensor) -> torch.Tensor:
    """The bit patterns as same-width signed integers (a view)."""
    return z.view(_INT[z.dtype])


def _key(b: torch.Tensor) -> torch.Tensor:
    """Ranking key of bit patterns: integer order is float order, -0.0 == +0.0."""
    sign = b >> (b.element_size() * 8 - 1)  # -1 where the sign bit is set, else 0
    return (b ^ (sign & torch.iinfo(b.dtype).max)) - sign


def _gate(z: torch.Tensor, y: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
    """Rows where a class may rank above the label (a superset; exact rows follow).

    ``scratch`` is a writable copy of ``z``; it is restored before returning.
    """
    n, c = z.shape
    flat = _bits(scratch).reshape(-1)
    at_label = torch.arange(n, device=z.device) * c + y
    by = flat[at_label]
    flat[at_label] = torch.iinfo(flat.dtype).min
    others = flat.reshape(n, c).amax(dim=1)
    flat[at_label] = by
    return ((by <= 0) | (others >= by)).nonzero()[:, 0]


def _above_mask(k: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Classes ranked above the label: greater key, or equal key with a lower index."""
    n, c = k.shape
    ky = k.reshape(-1)[torch.arange(n, device=k.device) * c + ys]
    lower = torch.arange(c, device=k.device)[None, :] < ys[:, None]
    return k > ky[:, None] - lower.to(k.dtype)


def _rank_order(rr: torch.Tensor, kk: torch.Tensor) -> torch.Tensor:
    """Permutation of the entries to (row ascending, key descending, index ascending).

    The entries come in (row, index) order, so a stable sort on (row, -key) suffices.
    """
    nbits = kk.element_size() * 8
    if nbits <= 32:  # keys lie in (-2**(nbits-1), 2**(nbits-1)): pack them with the row
        packed = (rr << nbits) | ((1 << (nbits - 1)) - kk.to(torch.int64))
        return torch.sort(packed, stable=True).indices
    order = torch.sort(-kk, stable=True).indices
    return order[torch.sort(rr[order], stable=True).indices]


def _shift_rows(s: torch.Tensor, ys: torch.Tensor) -> None:
    """Apply the mechanism in place to every row of ``s`` (rows with rank 0 are untouched)."""
    c = s.shape[1]
    k = _key(_bits(s))
    rr, cc = _above_mask(k, ys).nonzero(as_tuple=True)  # row-major: by row, then index
    if rr.numel() == 0:
        return
    at = rr * c + cc
    order = _rank_order(rr, k.reshape(-1)[at])
    rr, at = rr[order], at[order]
    flat = s.reshape(-1)
    vals = flat[at]
    brk = rr[1:] != rr[:-1]
    true = torch.ones(1, dtype=torch.bool, device=s.device)
    last = torch.cat([brk, true])
    first = torch.cat([true, brk])
    nxt = torch.cat([vals[1:], vals[:1]])
    tail = rr[last]
    nxt[last] = flat[tail * c + ys[tail]]  # the last class above takes the label's value
    head = rr[first]
    flat[head * c + ys[head]] = vals[first]  # the label takes the maximum
    flat[at] = nxt


def _fix_zeros(z: torch.Tensor, y: torch.Tensor, out: torch.Tensor) -> None:
    """Rows holding both signed zeros follow numpy's literal kernel (see ``_numpy.py``).

    Such rows are rare; they make one small host round trip so that CPU and CUDA agree with
    the reference bit for bit.
    """
    from sortkd_cache.sorting import _numpy

    flat = _bits(z).reshape(-1)
    neg_zero = torch.iinfo(flat.dtype).min  # the bit pattern of -0.0
    if int(flat.min()) != neg_zero:
        return
    rows = torch.unique((flat == neg_zero).nonzero()[:, 0] // z.shape[1])
    rows = rows[(_bits(z[rows]) == 0).any(dim=1)]
    if rows.numel() == 0:
        return
    if z.dtype == torch.bfloat16:  # numpy has no bfloat16: order by value, +0.0 first
        zz = z[rows].float().cpu().numpy()
        fixed = torch.from_numpy(_numpy.literal_rows(zz, y[rows].cpu().numpy())).to(z.dtype)
    else:
        zz = z[rows].cpu().numpy()
        fixed = torch.from_numpy(_numpy.literal_rows(zz, y[rows].cpu().numpy()))
    out[rows] = fixed.to(z.device)


@torch.no_grad()
def sort_2d(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The sorting mechanism over the rows of ``z``; a new tensor."""
    out = z.clone()
    rows = _gate(z, y, out)
    if rows.numel():
        s = z[rows]
        _shift_rows(s, y[rows])
        out[rows] = s
    _fix_zeros(z, y, out)
    return out


def first_argmax(z: torch.Tensor) -> torch.Tensor:
    """First index of the row maximum (-0.0 == +0.0)."""
    return _key(_bits(z)).argmax(dim=1)


@torch.no_grad()
def swap_2d(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Exchange the label's value with the row maximum's (first index); a new tensor."""
    out = z.clone()
    rows = _gate(z, y, out)
    if rows.numel():
        c = z.shape[1]
        at_max = rows * c + first_argmax(z[rows])
        at_label = rows * c + y[rows]
        flat_in, flat_out = z.reshape(-1), out.reshape(-1)
        flat_out[at_max] = flat_in[at_label]
        flat_out[at_label] = flat_in[at_max]
    return out


@torch.no_grad()
def label_rank_2d(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """How many classes rank above the label (0: the row is already sorted)."""
    rank = torch.zeros(z.shape[0], dtype=torch.int64, device=z.device)
    rows = _gate(z, y, z.clone())
    if rows.numel():
        rank[rows] = _above_mask(_key(_bits(z[rows])), y[rows]).sum(dim=1)
    return rank
