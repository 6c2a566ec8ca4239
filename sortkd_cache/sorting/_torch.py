"""Torch kernels for the sorting mechanism: the twin of ``_numpy.py`` (read its docstring).

Every step stays on the input's device (CPU or CUDA, no numpy round trip) and is
deterministic: integer totalOrder keys for every comparison and sort (``stable=True``), writes
to distinct positions only. Results equal the numpy kernels bit for bit. The public API runs
CPU tensors of the dtypes in ``NUMPY_TWINS`` through the numpy kernels (zero-copy), which are
faster on CPU; these kernels serve CUDA tensors and bfloat16.
"""

from __future__ import annotations

import torch

__all__ = ["NUMPY_TWINS", "label_rank_2d", "sort_2d", "swap_2d"]

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
    """totalOrder key of signed bit patterns: flip the magnitude bits where the sign is set."""
    sign = b >> (b.element_size() * 8 - 1)  # -1 where the sign bit is set, else 0
    return b ^ (sign & torch.iinfo(b.dtype).max)


def _gate(z: torch.Tensor, y: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
    """Rows where a class may rank above the label (a superset of them).

    ``scratch`` is a writable copy of ``z``; it is restored before returning.
    """
    n, c = z.shape
    flat = _bits(scratch).reshape(-1)
    at_label = torch.arange(n, device=z.device) * c + y
    by = flat[at_label]
    flat[at_label] = torch.iinfo(flat.dtype).min
    others = flat.reshape(n, c).amax(dim=1)
    flat[at_label] = by
    return ((by < 0) | (others >= by)).nonzero()[:, 0]


def _above_mask(k: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Classes ranked above the label: greater key, or equal key with a lower index."""
    n, c = k.shape
    ky = k.reshape(-1)[torch.arange(n, device=k.device) * c + ys][:, None]
    lower = torch.arange(c, device=k.device)[None, :] < ys[:, None]
    return (k > ky) | (lower & (k == ky))


def _rank_order(rr: torch.Tensor, kk: torch.Tensor) -> torch.Tensor:
    """Permutation of the entries to (row ascending, key descending, index ascending).

    The entries come in (row, index) order, so a stable sort on (row, -key) suffices.
    """
    nbits = kk.element_size() * 8
    if nbits <= 32:  # pack the row with the flipped key, which lies in [0, 2**nbits)
        flipped = ((1 << (nbits - 1)) - 1) - kk.to(torch.int64)
        return torch.sort((rr << nbits) | flipped, stable=True).indices
    order = torch.sort(~kk, stable=True).indices  # ~k = -(k + 1) never overflows
    return order[torch.sort(rr[order], stable=True).indices]


def _shift_rows(s: torch.Tensor, ys: torch.Tensor) -> None:
    """Apply the mechanism in place to the rows of ``s`` (rows with rank 0 are untouched)."""
    c = s.shape[1]
    k = _key(_bits(s))
    at = _above_mask(k, ys).reshape(-1).nonzero()[:, 0]  # flat positions, by row, then index
    if at.numel() == 0:
        return
    rr = at // c
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


def _swap_rows(s: torch.Tensor, ys: torch.Tensor) -> None:
    """Exchange each row's label value with its first maximum's, in place."""
    m, c = s.shape
    top = _key(_bits(s)).argmax(dim=1)
    rows = torch.arange(m, device=s.device) * c
    at_max, at_label = rows + top, rows + ys
    flat = s.reshape(-1)
    v_max, v_label = flat[at_max], flat[at_label]
    flat[at_max] = v_label
    flat[at_label] = v_max


@torch.no_grad()
def sort_2d(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The sorting mechanism over the rows of ``z``; a new tensor."""
    out = z.clone()
    rows = _gate(z, y, out)
    if rows.numel():
        s = z[rows]
        _shift_rows(s, y[rows])
        out[rows] = s
    return out


@torch.no_grad()
def swap_2d(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Exchange the label's value with the row's first maximum's; a new tensor."""
    out = z.clone()
    rows = _gate(z, y, out)
    if rows.numel():
        s = z[rows]
        _swap_rows(s, y[rows])
        out[rows] = s
    return out


@torch.no_grad()
def label_rank_2d(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """How many classes rank above the label (0: the row is already sorted)."""
    rank = torch.zeros(z.shape[0], dtype=torch.int64, device=z.device)
    rows = _gate(z, y, z.clone())
    if rows.numel():
        rank[rows] = _above_mask(_key(_bits(z[rows])), y[rows]).sum(dim=1)
    return rank
