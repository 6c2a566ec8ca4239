"""The sorting mechanism (the label takes the row's largest logit) and the ``swap`` baseline.

Bit-exact, deterministic kernels for numpy arrays and torch tensors (CPU or CUDA) of any
leading shape ``[..., C]``; see :func:`sort_logits` for the exact rule, ties and signed zeros.
"""

from __future__ import annotations

from sortkd_cache.sorting._api import (
    METHODS,
    Labels,
    LogitsMethod,
    get_method,
    label_rank,
    sort_logits,
    swap_logits,
)

__all__ = [
    "METHODS",
    "Labels",
    "LogitsMethod",
    "get_method",
    "label_rank",
    "sort_logits",
    "swap_logits",
]
