"""The sorting mechanism (the label takes the row's largest logit) and the ``swap`` baseline.

Bit-exact, deterministic kernels for numpy arrays and torch tensors (CPU or CUDA) of any
leading shape ``[..., C]``, every comparison in IEEE-754 totalOrder; see :func:`sort_logits`.
Each method is one :class:`SortMethod` in :data:`METHODS` (dense numpy and torch kernels, row
statistics, sparse and sampled forms); :func:`register_method` adds one.
"""

from __future__ import annotations

from sortkd_cache.sorting._api import (
    Applied,
    Labels,
    LogitsMethod,
    apply_with_stats,
    label_rank,
    sort_logits,
    swap_logits,
)
from sortkd_cache.sorting._forms import order_key, rank_order, top_k_form
from sortkd_cache.sorting._method import (
    LOGIT_KINDS,
    METHOD_NAMES,
    METHODS,
    RelabelForm,
    SortMethod,
    SparseForm,
    get_method,
    register_method,
    row_stats,
)

__all__ = [
    "LOGIT_KINDS",
    "METHODS",
    "METHOD_NAMES",
    "Applied",
    "Labels",
    "LogitsMethod",
    "RelabelForm",
    "SortMethod",
    "SparseForm",
    "apply_with_stats",
    "get_method",
    "label_rank",
    "order_key",
    "rank_order",
    "register_method",
    "row_stats",
    "sort_logits",
    "swap_logits",
    "top_k_form",
]
