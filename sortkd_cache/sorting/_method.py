"""A sort method as one object: :class:`SortMethod`, and the registry every stage asks.

A method is everything a stage needs to apply it, in one place:

* ``kernel``: the dense numpy kernel over validated rows ``z [N, C]``, ``y [N]``;
* ``torch_kernel``: ``"module:function"`` of its torch kernel (CUDA tensors, bfloat16; CPU
  tensors of numpy's dtypes run ``kernel`` zero-copy), imported when first used so that
  numpy-only callers never import torch;
* ``with_stats``: the kernel fused with the ``sort`` stage's row statistics (each input row's
  label rank and first maximum; :class:`~sortkd_cache.sorting.Applied`); by default the kernel
  then :func:`row_stats`;
* ``sparse``: its form on sparse (top-K) rows, or ``None`` with ``sparse_refusal`` saying why
  it has none (``sort``/``swap`` on a top-K store then exit 2 with that line);
* ``relabel``: its form on sampled rows (:mod:`sortkd_cache.sparse._sampled`), or ``None``
  with ``relabel_refusal`` saying why.

The bulk stage (``sort``), the online teacher (``train --online-teacher --logits X``) and the
sparse kinds all call that object; nothing picks a kernel by its name. Adding a method is one
module that calls :func:`register_method`, and the kinds stores and options accept
(:data:`LOGIT_KINDS`) are read from :data:`METHODS` each time they are asked, so a method
registered later (by a plugin's entry point) is seen.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, overload

import numpy as np
from numpy.typing import NDArray

from sortkd_cache._registry import Registry, named_entry
from sortkd_cache.errors import ConfigError
from sortkd_cache.sorting._dispatch import Labels, run_kernel
from sortkd_cache.sorting._numpy import Applied, first_argmax, label_rank_2d

if TYPE_CHECKING:
    import torch

__all__ = [
    "LOGIT_KINDS",
    "METHODS",
    "METHOD_NAMES",
    "RelabelForm",
    "SortMethod",
    "SparseForm",
    "get_method",
    "register_method",
    "row_stats",
]

_Arr = NDArray[Any]
_NpT = TypeVar("_NpT", bound="NDArray[Any]")
_IntArr = NDArray[np.int64]
NumpyKernel = Callable[[_Arr, _IntArr], _Arr]
#: ``(ids [N, K] int64, values [N, K], label_values [N], y [N]) -> (ids, values)``: a
#: method on top-K rows, exact on every kept entry (the K largest values after it, ranked)
SparseForm = Callable[[_IntArr, _Arr, _Arr, _IntArr], tuple[_IntArr, _Arr]]
#: ``(ids [N, W], up [N, W], y [N]) -> ids after the method [N, W]``: a method on sampled rows
#: (:mod:`sortkd_cache.sparse._sampled`), for a method that permutes values and gives the
#: label the row maximum. A draw is a rank of the row's descending values; the method keeps
#: each draw's value and hands it to the class that holds that rank after it. ``up`` is, for
#: an entry ranked at or above the label, the class ranked directly above it (the label for
#: the first maximum), and the entry's own id elsewhere.
RelabelForm = Callable[[_IntArr, _IntArr, _IntArr], _IntArr]


def row_stats(kernel: NumpyKernel, z: _Arr, y: _IntArr) -> Applied:
    """``kernel``'s output with each input row's label rank and first totalOrder maximum."""
    return Applied(kernel(z, y), label_rank_2d(z, y), first_argmax(z))


@dataclass(frozen=True)
class SortMethod:
    """One registered logits transform (see the module docstring for each part)."""

    name: str
    kernel: NumpyKernel
    torch_kernel: str
    summary: str = ""
    fused_stats: Callable[[_Arr, _IntArr], Applied] | None = None
    sparse: SparseForm | None = None
    sparse_refusal: str = "it declares no sparse form"
    relabel: RelabelForm | None = None
    relabel_refusal: str = "it declares no form on sampled rows"
    _torch_fn: list[Callable[..., Any]] = field(default_factory=list, repr=False, compare=False)

    @overload
    def __call__(self, z: _NpT, y: Labels) -> _NpT: ...
    @overload
    def __call__(self, z: torch.Tensor, y: Labels) -> torch.Tensor: ...
    @overload
    def __call__(self, z: _Arr | torch.Tensor, y: Labels) -> _Arr | torch.Tensor: ...
    def __call__(self, z: _Arr | torch.Tensor, y: Labels) -> _Arr | torch.Tensor:
        """The method on numpy or torch logits of any leading shape (as ``sort_logits``)."""
        return run_kernel(z, y, self.kernel, self.torch_fn, True)  # type: ignore[no-any-return]

    def torch_fn(self) -> Callable[..., Any]:
        """The torch kernel, imported on first use."""
        if not self._torch_fn:
            module, _, name = self.torch_kernel.partition(":")
            try:
                self._torch_fn.append(getattr(importlib.import_module(module), name))
            except (ImportError, AttributeError) as exc:
                raise ConfigError(
                    f"method {self.name!r}: torch kernel {self.torch_kernel!r} not found ({exc})"
                ) from None
        return self._torch_fn[0]

    def with_stats(self, z: _Arr, y: _IntArr) -> Applied:
        """The kernel over validated rows with each input row's statistics."""
        if self.fused_stats is not None:
            return self.fused_stats(z, y)
        return row_stats(self.kernel, z, y)

    def on_sparse(
        self, ids: _IntArr, values: _Arr, label_values: _Arr, y: _IntArr
    ) -> tuple[_IntArr, _Arr]:
        """The method on top-K rows; ``ConfigError`` with the declared refusal otherwise."""
        if self.sparse is None:
            raise ConfigError(f"method {self.name!r} has no sparse form: {self.sparse_refusal}")
        return self.sparse(ids, values, label_values, y)

    def on_draws(self, ids: _IntArr, up: _IntArr, y: _IntArr) -> _IntArr:
        """The drawn classes after the method (see :data:`RelabelForm`); refused without one."""
        if self.relabel is None:
            raise ConfigError(
                f"method {self.name!r} cannot be applied to sampled rows: "
                f"{self.relabel_refusal}; sample its dense kind instead (copy --sample)"
            )
        return self.relabel(ids, up, y)


METHODS: Registry[SortMethod] = Registry(
    "method",
    group="sortkd_cache.sort_methods",
    adapt=named_entry(SortMethod, "sort method"),
)
"""The stored logits transforms, by the name used in the store and on the command line (other
packages register theirs in the ``sortkd_cache.sort_methods`` entry-point group: a
:class:`SortMethod` whose ``name`` is the entry point's)."""


def register_method(method: SortMethod) -> SortMethod:
    """Register ``method`` under its name (a duplicate name is an error)."""
    return METHODS.add(method.name, method)


def get_method(name: str) -> SortMethod:
    """The method called ``name``; ``ConfigError`` naming the known ones otherwise."""
    return METHODS.get(name)


class _Names(Sequence[str]):
    """``first`` then the names of :data:`METHODS`, read from the registry each time."""

    def __init__(self, first: tuple[str, ...], label: str) -> None:
        self._first, self._label = first, label

    def _now(self) -> tuple[str, ...]:
        return (*self._first, *METHODS.names())

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._now()[index]

    def __len__(self) -> int:
        return len(self._now())

    def __iter__(self) -> Iterator[str]:
        return iter(self._now())

    def __contains__(self, kind: object) -> bool:
        return kind in self._now()

    def __repr__(self) -> str:
        return f"{self._label}{self._now()!r}"


#: Every logits kind a store may hold: the teacher's ``raw`` logits and one kind per method
#: (what ``sort --method`` writes and ``train --logits`` reads), read when asked.
LOGIT_KINDS: Sequence[str] = _Names(("raw",), "LOGIT_KINDS")
#: The registered methods' names, read when asked (``sort --method``, recipes).
METHOD_NAMES: Sequence[str] = _Names((), "METHOD_NAMES")
