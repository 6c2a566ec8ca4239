"""Public entry points (``sort_logits``, ``swap_logits``, ``label_rank``) and the two built-in
methods, registered as :class:`~sortkd_cache.sorting.SortMethod` objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

import numpy as np
from numpy.typing import NDArray

from sortkd_cache.errors import ConfigError
from sortkd_cache.sorting import _numpy
from sortkd_cache.sorting._dispatch import Labels, prepare_numpy, run_kernel
from sortkd_cache.sorting._forms import sort_draws, top_k_form
from sortkd_cache.sorting._method import (
    LOGIT_KINDS,
    METHODS,
    SortMethod,
    get_method,
    register_method,
)
from sortkd_cache.sorting._numpy import Applied

if TYPE_CHECKING:
    import torch

__all__ = [
    "LOGIT_KINDS",
    "METHODS",
    "Applied",
    "Labels",
    "LogitsMethod",
    "SortMethod",
    "apply_with_stats",
    "get_method",
    "label_rank",
    "register_method",
    "sort_logits",
    "swap_logits",
]


_NpT = TypeVar("_NpT", bound="NDArray[Any]")


class LogitsMethod(Protocol):
    """A per-row logits transform: ``method(z, y)`` returns a new array like ``z``."""

    @overload
    def __call__(self, z: _NpT, y: Labels) -> _NpT: ...
    @overload
    def __call__(self, z: torch.Tensor, y: Labels) -> torch.Tensor: ...
    @overload
    def __call__(
        self, z: NDArray[Any] | torch.Tensor, y: Labels
    ) -> NDArray[Any] | torch.Tensor: ...


@overload
def sort_logits(z: _NpT, y: Labels) -> _NpT: ...
@overload
def sort_logits(z: torch.Tensor, y: Labels) -> torch.Tensor: ...
@overload
def sort_logits(z: NDArray[Any] | torch.Tensor, y: Labels) -> NDArray[Any] | torch.Tensor: ...
def sort_logits(z: NDArray[Any] | torch.Tensor, y: Labels) -> NDArray[Any] | torch.Tensor:
    """The sorting mechanism: the label takes the row's largest value.

    For each row ``z[..., :]`` (C classes) with label ``y[...]``, every comparison in IEEE-754
    totalOrder (-0.0 ranks below +0.0; equal values are identical bit patterns): ``order`` is
    the label, then the other classes by descending value (equal values: lower index first);
    ``v`` is the row's values in descending order; ``out[order[k]] = v[k]``. Classes that
    ranked above the label move down one rank, the others keep their bits. Each output row is
    a bitwise permutation of its input row, the same on every machine and backend.

    ``z`` is a numpy array or torch tensor (CPU or CUDA) of shape ``[..., C]`` and a float
    dtype (float16, bfloat16 for torch, float32, float64); ``y`` holds integer labels of shape
    ``[...]`` (numpy, torch, or an int when ``z`` is one row). Returns a new array of the same
    type, dtype, shape and device; ``z`` is not modified. Raises ``ConfigError`` on a bad
    dtype, shape or label (naming the label and its position).

    NaN is unsupported (rejected upstream, at dump time); were one present, it ranks by its
    bit pattern in totalOrder (above +inf, or below -inf when its sign bit is set), like any
    other value.
    """
    return _SORT(z, y)


@overload
def swap_logits(z: _NpT, y: Labels) -> _NpT: ...
@overload
def swap_logits(z: torch.Tensor, y: Labels) -> torch.Tensor: ...
@overload
def swap_logits(z: NDArray[Any] | torch.Tensor, y: Labels) -> NDArray[Any] | torch.Tensor: ...
def swap_logits(z: NDArray[Any] | torch.Tensor, y: Labels) -> NDArray[Any] | torch.Tensor:
    """The comparison method: exchange the label's value with the row maximum's value.

    The maximum is the row's first totalOrder maximum (the lowest index holding its largest
    value; -0.0 ranks below +0.0).
    Same inputs, outputs, errors and NaN caveat as :func:`sort_logits`.
    """
    return _SWAP(z, y)


@overload
def label_rank(z: NDArray[Any], y: Labels) -> NDArray[np.int64]: ...
@overload
def label_rank(z: torch.Tensor, y: Labels) -> torch.Tensor: ...
@overload
def label_rank(z: NDArray[Any] | torch.Tensor, y: Labels) -> NDArray[np.int64] | torch.Tensor: ...
def label_rank(z: NDArray[Any] | torch.Tensor, y: Labels) -> NDArray[np.int64] | torch.Tensor:
    """How many classes rank above the label (greater in totalOrder, or equal, lower index).

    0 means the label already holds the row maximum, so :func:`sort_logits` leaves the row's
    values in place. Returns int64 of shape ``[...]``: numpy for numpy input, else a tensor on
    ``z``'s device.
    """
    return run_kernel(z, y, _numpy.label_rank_2d, "label_rank_2d", False)


def apply_with_stats(method: str, z: NDArray[Any], y: Labels) -> Applied:
    """``method`` over the numpy rows ``z [..., C]``, with each input row's statistics.

    One pass gives the method's output, each row's :func:`label_rank` and ``top``, the index of
    the row's first totalOrder maximum (the ``sort`` stage's statistics). Same checks as
    :func:`sort_logits`; ``rank`` and ``top`` are int64 of shape ``[...]``.
    """
    kind = get_method(method)
    if isinstance(z, np.generic):
        z = np.asarray(z)
    if not isinstance(z, np.ndarray):
        raise ConfigError(f"logits must be a numpy array; got {type(z).__name__}")
    z2, y2, lead = prepare_numpy(z, y)
    if z2.size == 0:
        res = Applied(z2.copy(), np.zeros(z2.shape[0], np.int64), y2.copy())
    else:
        res = kind.with_stats(z2, y2)
    return Applied(
        res.out.reshape(z.shape).astype(z.dtype, copy=False),
        res.rank.reshape(lead),
        res.top.reshape(lead),
    )


_SORT = register_method(
    SortMethod(
        "sort",
        _numpy.sort_2d,
        "sortkd_cache.sorting._torch:sort_2d",
        "the label takes the row's largest value, the classes above it move down one rank",
        fused_stats=_numpy.sort_with_stats,
        sparse=top_k_form(_numpy.sort_2d),
        relabel=sort_draws,
    )
)
_SWAP = register_method(
    SortMethod(
        "swap",
        _numpy.swap_2d,
        "sortkd_cache.sorting._torch:swap_2d",
        "the label's value and the row maximum's are exchanged",
        fused_stats=_numpy.swap_with_stats,
        sparse=top_k_form(_numpy.swap_2d),
        relabel_refusal="a label drawn without the row's first maximum would need its class",
    )
)
