"""``dump --topk K`` and ``copy --topk K``: dense chunks in, sparse chunks and fidelity out.

Each (block, view) chunk is truncated as it is produced (no dense array is ever written and
memory stays per chunk); its fidelity sums (KL(T) at each recorded temperature, rows whose
label fell outside the top K, rows) are written with it, so resumed and multi-rank runs add
up exactly, and :func:`finalize_fidelity` records the totals on the kind.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sortkd_cache.errors import ConfigError
from sortkd_cache.sparse import DEFAULT_TEMPERATURES, SparseSpec, check_topk
from sortkd_cache.store import SCHEMA_VERSION, CacheStore, StoreMeta, fidelity_record, sparse_path

__all__ = [
    "encode_chunk",
    "finalize_fidelity",
    "parse_temperatures",
    "sparse_meta",
    "source_fidelity",
    "sparse_spec_for",
]


def parse_temperatures(text: str | None) -> tuple[float, ...]:
    """``"1,2,4"`` to (1.0, 2.0, 4.0); ConfigError naming the bad value."""
    if text is None or text == "":
        return DEFAULT_TEMPERATURES
    try:
        return tuple(float(t) for t in str(text).split(","))
    except ValueError:
        raise ConfigError(f"--topk-temperatures must be numbers like 1,2,4, got {text!r}") from None


def sparse_spec_for(k: int, num_classes: int, dtype: str, temperatures: str | None) -> SparseSpec:
    return SparseSpec(
        check_topk(k, num_classes), num_classes, dtype, parse_temperatures(temperatures)
    )


def sparse_meta(meta: StoreMeta, spec: SparseSpec) -> StoreMeta:
    """``meta`` for a sparse store of ``spec`` (schema 2)."""
    return meta.replace(schema=SCHEMA_VERSION, sparse=spec.to_dict())


def encode_chunk(spec: SparseSpec, dense: np.ndarray, labels: np.ndarray) -> tuple[Any, np.ndarray]:
    """(sparse rows, fidelity sums [T + 2]) of one dense chunk [S, C]."""
    from sortkd_cache.sparse import chunk_sums, compress

    rows = compress(dense, labels, spec)
    kl, outside, n = chunk_sums(spec, dense, labels, rows)
    return rows, np.concatenate([kl, [float(outside), float(n)]])


def finalize_fidelity(store: CacheStore, kind: str) -> dict[str, Any]:
    """The kind's fidelity record from its per-chunk sums (all chunks written)."""
    sums = np.asarray(store.raw_array(sparse_path(kind, "fidelity"))[...], dtype=np.float64)
    return fidelity_record(store.sparse_spec, sums)


def source_fidelity(store: CacheStore, kind: str) -> Any | None:
    """The per-(block, view) fidelity sums of a sparse ``kind`` made from dense rows (the
    array a re-sliced copy carries along), or None where the kind has none."""
    path = sparse_path(kind, "fidelity")
    return store.raw_array(path) if store.is_sparse and store.has_array(path) else None
