"""Dense rows to sparse rows: the top K in the sorting mechanism's order, plus the stats.

Everything is computed from the stored (already rounded) logits in float64 and rounded once
to the logits dtype; see :mod:`._spec` for what each field means.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from sortkd_cache.errors import ConfigError
from sortkd_cache.sorting import order_key, rank_order
from sortkd_cache.sparse._spec import SparseRows, SparseSpec

__all__ = ["compress", "order_key", "rank_order"]

#: LSKD's ``std + eps`` (``sortkd_cache.losses.lskd.STANDARDIZE_EPS``; kept here so that
#: compressing and verifying never import torch; a test checks they agree).
STANDARDIZE_EPS = 1e-7


def _top_k(z: NDArray[Any], k: int) -> NDArray[np.int64]:
    """Class ids of each row's K largest values in rank order (exact under ties)."""
    n, c = z.shape
    # one unique int64 per entry: descending key first, then the class id
    key = order_key(z)
    composite = (-key) * c + np.arange(c, dtype=np.int64)[None, :]
    if k < c:
        part = np.argpartition(composite, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(c), (n, c)).copy()
    picked = np.take_along_axis(composite, part, axis=1)
    return np.take_along_axis(part, np.argsort(picked, axis=1), axis=1).astype(np.int64)


def _tail_lse(scaled: NDArray[np.float64], kept: NDArray[np.int64]) -> NDArray[np.float64]:
    """logsumexp over each row's entries outside ``kept`` (``scaled`` <= 0 where kept)."""
    masked = scaled.copy()
    np.put_along_axis(masked, kept, -np.inf, axis=1)
    m = masked.max(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = m[:, 0] + np.log(np.exp(masked - m).sum(axis=1))
    return np.where(np.isfinite(m[:, 0]), out, -np.inf)


def _round(x: NDArray[np.float64], dtype: np.dtype[Any]) -> NDArray[Any]:
    """To the logits dtype, -inf (a mass that underflows) as the dtype's lowest value."""
    info = np.finfo(dtype)
    return np.clip(x, float(info.min), float(info.max)).astype(dtype)


def compress(z: NDArray[Any], y: NDArray[Any], spec: SparseSpec) -> SparseRows:
    """Sparse rows of dense logits ``z`` [N, C] with labels ``y`` [N] (see :mod:`._spec`)."""
    if z.ndim != 2 or z.shape[1] != spec.num_classes:
        raise ConfigError(f"expected logits [N, {spec.num_classes}], got {list(z.shape)}")
    if str(z.dtype) != spec.dtype:
        raise ConfigError(f"logits dtype {z.dtype} differs from the sparse kind's {spec.dtype}")
    yy = np.asarray(y, dtype=np.int64)
    n = z.shape[0]
    kept = _top_k(z, spec.k)
    values = np.take_along_axis(z, kept, axis=1)
    zf = z.astype(np.float64)
    zmax = values[:, :1].astype(np.float64)
    mean = zf.mean(axis=1)
    std = zf.std(axis=1, ddof=1)
    cols: list[NDArray[np.float64]] = [zf[np.arange(n), yy], mean, std]
    cols += [_tail_lse((zf - zmax) / t, kept) for t in spec.temperatures]
    scale = (std + STANDARDIZE_EPS)[:, None]
    cols += [_tail_lse((zf - zmax) / (scale * t), kept) for t in spec.lskd_temperatures]
    stats = _round(np.stack(cols, axis=1), np.dtype(spec.dtype))
    stats[:, 0] = z[np.arange(n), yy]  # the label's logit bit for bit
    return SparseRows(kept.astype(spec.id_dtype), values, stats)
