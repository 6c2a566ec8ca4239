"""A sort method: ``lift``, the label's logit raised to the row's maximum.

A method is one :class:`sortkd_cache.sorting.SortMethod`: its numpy kernel over rows
``z [N, C]`` with labels ``y [N]`` (same dtype and shape out), and ``"module:function"`` of its
torch kernel (used for CUDA tensors; CPU tensors run the numpy kernel). It declares no form on
sparse (top-K) or sampled rows, so a top-K store refuses it in one line.

Unlike ``sort`` and ``swap`` it is not a permutation of the row: the label's logit becomes the
maximum (tied with the class that held it) and every other logit keeps its value. It stands here
as an example of a method from outside the package, not as a recommendation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sortkd_cache.sorting import SortMethod

__all__ = ["LIFT", "lift_numpy", "lift_torch"]


def lift_numpy(z: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Each row's label logit set to the row's maximum (the first, as ``argmax`` finds it)."""
    out = z.copy()
    rows = np.arange(len(y))
    out[rows, y] = z[rows, z.argmax(axis=1)]
    return out


def lift_torch(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """:func:`lift_numpy` on a tensor of any device and dtype."""
    top = z.gather(1, z.argmax(dim=1, keepdim=True))
    return z.scatter(1, y.long().unsqueeze(1), top)


LIFT = SortMethod(
    "lift",
    lift_numpy,
    f"{__name__}:lift_torch",
    summary="the label's logit raised to the row maximum",
    sparse_refusal="the example declares no top-K form",
)
