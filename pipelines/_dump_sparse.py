"""``dump --topk K`` and ``copy --topk K``: the sparse format of the output store.

Each (block, view) chunk is truncated as it is produced (no dense array is ever written and
memory stays per chunk; :meth:`~sortkd_cache.store.SparseLayout.encode`); its fidelity sums
(KL(T) at each recorded temperature, rows whose label fell outside the top K, rows) are
written with it, so resumed and multi-rank runs add up exactly, and the layout's
``finish_attrs`` records the totals on the kind.
"""

from __future__ import annotations

from sortkd_cache.pipelines._dump_config import parse_temperatures
from sortkd_cache.sparse import SparseSpec, check_topk
from sortkd_cache.store import SCHEMA_VERSION, StoreMeta

__all__ = [
    "parse_temperatures",
    "sparse_meta",
    "sparse_spec_for",
]


def sparse_spec_for(k: int, num_classes: int, dtype: str, temperatures: str | None) -> SparseSpec:
    return SparseSpec(
        check_topk(k, num_classes), num_classes, dtype, parse_temperatures(temperatures)
    )


def sparse_meta(meta: StoreMeta, spec: SparseSpec) -> StoreMeta:
    """``meta`` for a sparse store of ``spec`` (schema 2)."""
    return meta.replace(schema=SCHEMA_VERSION, sparse=spec.to_dict())
