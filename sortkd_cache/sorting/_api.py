"""Public entry points: validate, flatten the leading shape, dispatch to numpy or torch.

torch is imported only when a tensor is passed (it is already imported then), so numpy-only
callers such as Dask workers running ``sort`` do not pay for it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar, overload

import numpy as np
from numpy.typing import NDArray

from sortkd_cache._registry import Registry
from sortkd_cache.errors import ConfigError
from sortkd_cache.sorting import _numpy
from sortkd_cache.sorting._numpy import Applied

if TYPE_CHECKING:
    import torch

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

Labels: TypeAlias = "int | np.integer[Any] | NDArray[np.integer[Any]] | torch.Tensor"
"""Integer labels of the logits' leading shape: numpy, torch, or an int for a single row."""

_NpT = TypeVar("_NpT", bound="NDArray[Any]")
Logits: TypeAlias = "NDArray[Any] | np.generic | torch.Tensor"
"""A logits array: numpy (a scalar reads as a 0-d array) or torch."""

_NUMPY_DTYPES = ("float16", "float32", "float64")
_TORCH_DTYPES = ("float16", "bfloat16", "float32", "float64")


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


def _torch_module() -> ModuleType | None:
    return sys.modules.get("torch")


def _is_tensor(x: object) -> bool:
    torch_mod = _torch_module()
    return torch_mod is not None and isinstance(x, torch_mod.Tensor)


def _torch_from_numpy(arr: NDArray[Any]) -> torch.Tensor:
    import torch

    return torch.from_numpy(arr)


def _position(index: tuple[int, ...]) -> str:
    if not index:
        return ""
    if len(index) == 1:
        return f" at position {index[0]}"
    return f" at position {index}"


def _check_labels_numpy(y: object, lead: tuple[int, ...], n_classes: int) -> NDArray[np.int64]:
    if isinstance(y, bool | np.bool_):
        raise ConfigError(f"labels must be integers; got bool {y!r}")
    if _is_tensor(y):
        y = y.detach().cpu().numpy()  # type: ignore[attr-defined]
    arr = np.asarray(y)
    if arr.dtype.kind not in "iu":
        raise ConfigError(f"labels must be integers; got dtype {arr.dtype}")
    if arr.shape != lead:
        raise ConfigError(
            f"labels shape {arr.shape} does not match the logits' leading shape {lead}"
        )
    bad = (arr < 0) | (arr >= n_classes)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ConfigError(
            f"label {int(arr[index])}{_position(index)} is out of range [0, {n_classes})"
        )
    return arr.astype(np.int64, copy=False)


def _prepare_numpy(
    z: NDArray[Any], y: object
) -> tuple[NDArray[Any], NDArray[np.int64], tuple[int, ...]]:
    if z.dtype.kind != "f" or z.dtype.itemsize not in (2, 4, 8):
        raise ConfigError(
            f"unsupported logits dtype {z.dtype}; expected {', '.join(_NUMPY_DTYPES)}"
        )
    if z.ndim == 0:
        raise ConfigError("logits must have a class axis; got a 0-d array")
    lead, n_classes = z.shape[:-1], z.shape[-1]
    yy = _check_labels_numpy(y, lead, n_classes)
    z2 = np.ascontiguousarray(z, dtype=z.dtype.newbyteorder("=")).reshape(-1, n_classes)
    return z2, yy.reshape(-1), lead


def _prepare_torch(z: torch.Tensor, y: object) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    if z.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise ConfigError(
            f"unsupported logits dtype {str(z.dtype).removeprefix('torch.')}; "
            f"expected {', '.join(_TORCH_DTYPES)}"
        )
    if z.ndim == 0:
        raise ConfigError("logits must have a class axis; got a 0-d tensor")
    lead, n_classes = tuple(z.shape[:-1]), z.shape[-1]
    if isinstance(y, bool):
        raise ConfigError(f"labels must be integers; got bool {y!r}")
    if isinstance(y, torch.Tensor):
        if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
            dtype = str(y.dtype).removeprefix("torch.")
            raise ConfigError(f"labels must be integers; got dtype {dtype}")
        yt = y.detach().to(device=z.device)
    else:
        yt = torch.as_tensor(_check_labels_numpy(y, lead, n_classes), device=z.device)
    if tuple(yt.shape) != lead:
        raise ConfigError(
            f"labels shape {tuple(yt.shape)} does not match the logits' leading shape {lead}"
        )
    yt = yt.to(torch.int64)
    bad = (yt < 0) | (yt >= n_classes)
    if bool(bad.any()):
        index = tuple(int(i) for i in bad.nonzero()[0].tolist())
        raise ConfigError(
            f"label {int(yt[index])}{_position(index)} is out of range [0, {n_classes})"
        )
    return z.detach().contiguous().reshape(-1, n_classes), yt.reshape(-1)


def _apply(
    z: Logits,
    y: object,
    np_kernel: Callable[[NDArray[Any], NDArray[np.int64]], NDArray[Any]],
    torch_kernel: str,
    same_dtype: bool,
) -> NDArray[Any] | torch.Tensor:
    if isinstance(z, np.generic):  # a numpy scalar: reported as a 0-d array
        z = np.asarray(z)
    if isinstance(z, np.ndarray):
        z2, y2, lead = _prepare_numpy(z, y)
        if z2.size == 0:
            res = z2.copy() if same_dtype else np.zeros(z2.shape[0], np.int64)
        else:
            res = np_kernel(z2, y2)
        shape = (*lead, z.shape[-1]) if same_dtype else lead
        res = res.reshape(shape)
        return res.astype(z.dtype, copy=False) if same_dtype else res
    if _is_tensor(z):
        from sortkd_cache.sorting import _torch

        zt, yt = _prepare_torch(z, y)
        if zt.numel() == 0:
            out = zt.clone() if same_dtype else yt.clone()
        elif zt.device.type == "cpu" and zt.dtype in _torch.NUMPY_TWINS:
            # numpy's CPU kernels are faster than torch's CPU ops; zero-copy both ways.
            out = _torch_from_numpy(np_kernel(zt.numpy(), yt.numpy()))
        else:
            out = getattr(_torch, torch_kernel)(zt, yt)
        return out.reshape(z.shape if same_dtype else z.shape[:-1])
    raise ConfigError(f"logits must be a numpy array or a torch tensor; got {type(z).__name__}")


def _sort_logits(z: Logits, y: Labels) -> NDArray[Any] | torch.Tensor:
    return _apply(z, y, _numpy.sort_2d, "sort_2d", True)


def _swap_logits(z: Logits, y: Labels) -> NDArray[Any] | torch.Tensor:
    return _apply(z, y, _numpy.swap_2d, "swap_2d", True)


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
    return _sort_logits(z, y)  # type: ignore[no-any-return]


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
    return _swap_logits(z, y)  # type: ignore[no-any-return]


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
    return _apply(z, y, _numpy.label_rank_2d, "label_rank_2d", False)  # type: ignore[no-any-return]


def apply_with_stats(method: str, z: NDArray[Any], y: Labels) -> Applied:
    """``method`` over the numpy rows ``z [..., C]``, with each input row's statistics.

    One pass gives the method's output, each row's :func:`label_rank` and ``top``, the index of
    the row's first totalOrder maximum (the ``sort`` stage's statistics). Same checks as
    :func:`sort_logits`; ``rank`` and ``top`` are int64 of shape ``[...]``.
    """
    get_method(method)
    if isinstance(z, np.generic):
        z = np.asarray(z)
    if not isinstance(z, np.ndarray):
        raise ConfigError(f"logits must be a numpy array; got {type(z).__name__}")
    z2, y2, lead = _prepare_numpy(z, y)
    if z2.size == 0:
        res = Applied(z2.copy(), np.zeros(z2.shape[0], np.int64), y2.copy())
    else:
        res = _numpy.apply_2d(method, z2, y2)
    return Applied(
        res.out.reshape(z.shape).astype(z.dtype, copy=False),
        res.rank.reshape(lead),
        res.top.reshape(lead),
    )


METHODS: Registry[LogitsMethod] = Registry("method")
"""The stored logits transforms, by the name used in the store and on the command line."""
METHODS.add("sort", sort_logits)
METHODS.add("swap", swap_logits)

#: Every logits kind a store may hold: the teacher's ``raw`` logits and one kind per method of
#: :data:`METHODS` (what ``sort --method`` writes and ``train --logits`` reads).
LOGIT_KINDS: tuple[str, ...] = ("raw", *METHODS.names())


def get_method(name: str) -> LogitsMethod:
    """The transform called ``name``; ``ConfigError`` naming the known ones otherwise."""
    return METHODS.get(name)
