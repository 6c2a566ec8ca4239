"""A compact top-K copy of sorted logits, and the dense rows rebuilt from it.

For each row the K largest values are kept with their class ids, label first (after sort the
label holds the maximum, so this is the usual top-K order). The other C - K classes are
rebuilt with one value per row, ``rest`` = T·log(mean(exp(dropped / T))) at T = 4 (the
default KD temperature): the dropped classes then keep exactly their total probability mass at
T = 4, and only its spread over them is lost. Ids use the
smallest unsigned integer type that holds C. Layout inside the store::

    /logits/<kind>_topk/ids     uint8|uint16|uint32 [N, V, K]
    /logits/<kind>_topk/values  logits dtype        [N, V, K]
    /logits/<kind>_topk/rest    float32             [N, V]
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "REST_TEMPERATURE",
    "create_topk_arrays",
    "id_dtype",
    "kl_divergence",
    "rebuild_dense",
    "read_topk",
    "topk_compress",
    "topk_fidelity",
    "write_topk_chunk",
]


def id_dtype(num_classes: int) -> np.dtype[Any]:
    """The smallest unsigned integer dtype that holds class ids below ``num_classes``."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if num_classes - 1 <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.uint64)


REST_TEMPERATURE = 4.0


def topk_compress(z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, values, rest) of rows ``z`` [..., C]: the K largest (ties: lower id first)."""
    c = z.shape[-1]
    full = np.argsort(-z.astype(np.float32), axis=-1, kind="stable")
    order = full[..., :k]
    values = np.take_along_axis(z, order, axis=-1)
    dropped = np.take_along_axis(z, full[..., k:], axis=-1).astype(np.float64) / REST_TEMPERATURE
    if dropped.shape[-1] == 0:
        rest = np.zeros(z.shape[:-1], dtype=np.float32)
    else:
        m = dropped.max(axis=-1, keepdims=True)
        lme = m[..., 0] + np.log(np.exp(dropped - m).mean(axis=-1))
        rest = (REST_TEMPERATURE * lme).astype(np.float32)
    return order.astype(id_dtype(c)), values, rest


def rebuild_dense(
    ids: np.ndarray, values: np.ndarray, rest: np.ndarray, num_classes: int
) -> np.ndarray:
    """Approximate dense rows [..., C] (float32): kept values in place, ``rest`` elsewhere."""
    out = np.repeat(rest.astype(np.float32)[..., None], num_classes, axis=-1)
    np.put_along_axis(out, ids.astype(np.int64), values.astype(np.float32), axis=-1)
    return out


def kl_divergence(p_logits: np.ndarray, q_logits: np.ndarray, temperature: float) -> np.ndarray:
    """KL(softmax(p/T) || softmax(q/T)) per row, float64."""
    p = p_logits.astype(np.float64) / temperature
    q = q_logits.astype(np.float64) / temperature
    lp = p - p.max(axis=-1, keepdims=True)
    lp -= np.log(np.exp(lp).sum(axis=-1, keepdims=True))
    lq = q - q.max(axis=-1, keepdims=True)
    lq -= np.log(np.exp(lq).sum(axis=-1, keepdims=True))
    result: np.ndarray = (np.exp(lp) * (lp - lq)).sum(axis=-1)
    return result


def _paths(kind: str) -> tuple[str, str, str]:
    base = f"logits/{kind}_topk"
    return f"{base}/ids", f"{base}/values", f"{base}/rest"


def create_topk_arrays(store: Any, kind: str, k: int, *, overwrite: bool = False) -> None:
    n, v, c, s = store.num_samples, store.num_views, store.num_classes, store.chunk_samples
    ids, values, rest = _paths(kind)
    store.create_array(
        ids, (n, v, k), (s, 1, k), str(id_dtype(c)), 0, overwrite=overwrite, attributes={"k": k}
    )
    store.create_array(
        values, (n, v, k), (s, 1, k), store.meta.dtype, float("nan"), overwrite=overwrite
    )
    store.create_array(rest, (n, v), (s, 1), "float32", float("nan"), overwrite=overwrite)


def write_topk_chunk(store: Any, kind: str, block: int, view: int, z: np.ndarray, k: int) -> None:
    start, stop = store.block_bounds(block)
    ids, values, rest = topk_compress(z, k)
    p_ids, p_values, p_rest = _paths(kind)
    store.raw_array(p_ids)[start:stop, view] = ids
    store.raw_array(p_values)[start:stop, view] = values
    store.raw_array(p_rest)[start:stop, view] = rest


def read_topk(store: Any, kind: str, selection: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p_ids, p_values, p_rest = _paths(kind)
    return (
        np.asarray(store.raw_array(p_ids)[selection]),
        np.asarray(store.raw_array(p_values)[selection]),
        np.asarray(store.raw_array(p_rest)[selection]),
    )


def topk_fidelity(store: Any, kind: str, k: int, max_rows: int = 20000) -> dict[str, Any]:
    """Mean KL at T=4 between the dense rows and their top-K rebuild, and the bytes it takes."""
    c = store.num_classes
    rows = min(store.num_samples, max_rows)
    z = np.asarray(store.raw_array(f"logits/{kind}")[:rows, 0])
    ids, values, rest = read_topk(store, kind, (slice(0, rows), 0))
    kl = kl_divergence(z, rebuild_dense(ids, values, rest, c), 4.0)
    itemsize = np.dtype(store.meta.dtype).itemsize
    return {
        "k": k,
        "bytes_per_sample_view": int(k * (id_dtype(c).itemsize + itemsize) + 4),
        "dense_bytes_per_sample_view": int(c * itemsize),
        "mean_kl_t4": float(kl.mean()),
        "max_kl_t4": float(kl.max()),
        "rows_checked": rows,
    }
