"""Validation of logits and labels, and the dispatch of a kernel to numpy or torch.

torch is imported only when a tensor is passed (it is already imported then), so numpy-only
callers such as Dask workers running ``sort`` do not pay for it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

from sortkd_cache.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["Labels", "Logits", "prepare_numpy", "run_kernel"]

Labels: TypeAlias = "int | np.integer[Any] | NDArray[np.integer[Any]] | torch.Tensor"
"""Integer labels of the logits' leading shape: numpy, torch, or an int for a single row."""
Logits: TypeAlias = "NDArray[Any] | np.generic | torch.Tensor"
"""A logits array: numpy (a scalar reads as a 0-d array) or torch."""

_NUMPY_DTYPES = ("float16", "float32", "float64")
_TORCH_DTYPES = ("float16", "bfloat16", "float32", "float64")


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


def prepare_numpy(
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


def run_kernel(
    z: Logits,
    y: object,
    np_kernel: Callable[[NDArray[Any], NDArray[np.int64]], NDArray[Any]],
    torch_kernel: str | Callable[[], Callable[..., Any]],
    same_dtype: bool,
) -> NDArray[Any] | torch.Tensor:
    if isinstance(z, np.generic):  # a numpy scalar: reported as a 0-d array
        z = np.asarray(z)
    if isinstance(z, np.ndarray):
        z2, y2, lead = prepare_numpy(z, y)
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
            fn = getattr(_torch, torch_kernel) if isinstance(torch_kernel, str) else torch_kernel()
            out = fn(zt, yt)
        return out.reshape(z.shape if same_dtype else z.shape[:-1])
    raise ConfigError(f"logits must be a numpy array or a torch tensor; got {type(z).__name__}")
