"""``dump --topk K`` / ``--sample S`` and ``copy --topk K`` / ``--sample S``: the sparse
format of the output store.

Each (block, view) chunk is truncated as it is produced (no dense array is ever written and
memory stays per chunk; :meth:`~sortkd_cache.store.SparseLayout.encode`); its fidelity sums
(KL(T) at each recorded temperature, rows whose label fell outside the top K, rows) are
written with it, so resumed and multi-rank runs add up exactly, and the layout's
``finish_attrs`` records the totals on the kind.
"""

from __future__ import annotations

from sortkd_cache.pipelines.common.sparse_options import parse_temperatures
from sortkd_cache.sparse import DEFAULT_PROPOSAL, SampledSpec, SparseSpec, check_topk
from sortkd_cache.store import SCHEMA_VERSION, StoreMeta

__all__ = [
    "parse_temperatures",
    "sampled_spec_for",
    "sparse_meta",
    "sparse_spec_for",
]


def sparse_spec_for(k: int, num_classes: int, dtype: str, temperatures: str | None) -> SparseSpec:
    return SparseSpec(
        check_topk(k, num_classes), num_classes, dtype, parse_temperatures(temperatures)
    )


def sampled_spec_for(
    draws: int,
    num_classes: int,
    dtype: str,
    proposal: float | None,
    seed: int,
    head: int | None = None,
) -> SampledSpec:
    """``--sample S`` (``--sample-head H``) of a store of ``num_classes`` in ``dtype``; the
    draws are keyed by the store's ``seed``."""
    t0 = DEFAULT_PROPOSAL if proposal is None else proposal
    return SampledSpec(draws, num_classes, dtype, t0, seed=seed, head=head or 0)


def sparse_meta(meta: StoreMeta, spec: SparseSpec | SampledSpec) -> StoreMeta:
    """``meta`` for a sparse (top-K or sampled) store of ``spec`` (schema 2)."""
    return meta.replace(schema=SCHEMA_VERSION, sparse=spec.to_dict())
