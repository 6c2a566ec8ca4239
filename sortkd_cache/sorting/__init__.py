"""The sorting mechanism (the label takes the row's largest logit) and the ``swap`` baseline.

Bit-exact, deterministic kernels for numpy arrays and torch tensors (CPU or CUDA) of any
leading shape ``[..., C]``, every comparison in IEEE-754 totalOrder; see :func:`sort_logits`.
"""

from __future__ import annotations

from sortkd_cache.sorting._api import (
    LOGIT_KINDS,
    METHODS,
    Applied,
    Labels,
    LogitsMethod,
    apply_with_stats,
    get_method,
    label_rank,
    sort_logits,
    swap_logits,
)

__all__ = [
    "LOGIT_KINDS",
    "METHODS",
    "Applied",
    "Labels",
    "LogitsMethod",
    "apply_with_stats",
    "get_method",
    "label_rank",
    "sort_logits",
    "swap_logits",
]
