"""The store's schema as one table: which keys a store may hold, what each array must be.

Everything that checks a store's structure reads this table: ``verify`` (every array's shape,
chunks, dtype and fill value; keys that are no part of a store are reported), ``copy`` (only
keys of this schema are ever written, whatever names a source or a crafted zip holds), and
``--overwrite`` (a destination whose keys all belong to the schema is a store, or a half
copy of one). A new logits kind or array is one new row of :data:`ARRAYS`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sortkd_cache.store._layout import LABELS, LOGIT_KINDS, NUM_PARAMS, PARAMS, num_blocks
from sortkd_cache.store._sparse import expected_sparse

if TYPE_CHECKING:
    from sortkd_cache.store._meta import StoreMeta

__all__ = [
    "ARRAYS",
    "GROUPS",
    "ArraySpec",
    "array_paths",
    "expected",
    "grid_size",
    "is_schema_key",
    "spec_for",
]

Dims = Callable[["StoreMeta"], tuple[int, ...]]


@dataclass(frozen=True)
class ArraySpec:
    """One array of the layout. ``path`` may hold ``{kind}`` (each of LOGIT_KINDS).

    ``dtype``: a numpy dtype name, ``"logits"`` (the store's logits dtype) or ``"integer"``
    (any integer dtype). ``fill``: the fill value the layout writes, ``"nan"`` for float
    arrays (a missing chunk then reads as NaN and is reported instead of read as zeros).
    ``shape``/``chunks``: from the provenance record; None where only the leading [N, V] is
    fixed (top-K arrays, whose K lives in their attributes)."""

    path: str
    ndim: int
    dtype: str
    fill: str | int
    shape: Dims | None = None
    chunks: Dims | None = None
    #: None: any store; True: sparse stores only (shape, chunks and dtype from the sparse
    #: record, :func:`._sparse.expected_sparse`); False: dense stores only
    sparse: bool | None = None


def _nvc(m: StoreMeta) -> tuple[int, ...]:
    return (m.num_samples, m.num_views, m.num_classes)


def _blocks(m: StoreMeta) -> tuple[int, ...]:
    return (num_blocks(m.num_samples, m.chunk_samples), m.num_views)


ARRAYS: tuple[ArraySpec, ...] = (
    ArraySpec(LABELS, 1, "int64", -1, lambda m: (m.num_samples,), lambda m: (m.chunk_samples,)),
    ArraySpec(
        PARAMS,
        3,
        "int32",
        -1,
        lambda m: (m.num_samples, m.num_views, NUM_PARAMS),
        lambda m: (m.chunk_samples, 1, NUM_PARAMS),
    ),
    ArraySpec(
        "logits/{kind}",
        3,
        "logits",
        "nan",
        _nvc,
        lambda m: (m.chunk_samples, 1, m.num_classes),
        sparse=False,
    ),
    ArraySpec("progress/{kind}", 2, "int64", -1, _blocks, lambda m: (1, 1)),
    ArraySpec("logits/{kind}_topk/ids", 3, "integer", 0),
    ArraySpec("logits/{kind}_topk/values", 3, "logits", "nan"),
    ArraySpec(
        "logits/{kind}_topk/rest",
        2,
        "float32",
        "nan",
        lambda m: (m.num_samples, m.num_views),
        lambda m: (m.chunk_samples, 1),
    ),
    ArraySpec("logits/{kind}/ids", 3, "sparse", 0, sparse=True),
    ArraySpec("logits/{kind}/values", 3, "sparse", "nan", sparse=True),
    ArraySpec("logits/{kind}/stats", 3, "sparse", "nan", sparse=True),
    ArraySpec("logits/{kind}/counts", 3, "sparse", 0, sparse=True),  # sampled kinds
    ArraySpec("logits/{kind}/up", 3, "sparse", 0, sparse=True),
    ArraySpec("logits/{kind}/codes", 3, "sparse", 0, sparse=True),  # quantized kinds
    ArraySpec("logits/{kind}/fidelity", 3, "sparse", "nan", sparse=True),
)

#: group nodes (their zarr.json is a key of the schema too)
GROUPS: tuple[str, ...] = ("", "logits", "progress", "logits/{kind}_topk", "logits/{kind}")

_INDEX = re.compile(r"^(0|[1-9][0-9]{0,17})$")


def _expand(template: str) -> Iterator[tuple[str, str | None]]:
    if "{kind}" not in template:
        yield template, None
        return
    for kind in LOGIT_KINDS:
        yield template.format(kind=kind), kind


def array_paths() -> list[str]:
    """Every array path the schema allows (for stores whose keys cannot be listed)."""
    return [path for spec in ARRAYS for path, _ in _expand(spec.path)]


def spec_for(path: str) -> ArraySpec | None:
    for spec in ARRAYS:
        if any(p == path for p, _ in _expand(spec.path)):
            return spec
    return None


def _group_paths() -> set[str]:
    return {path for g in GROUPS for path, _ in _expand(g)}


def is_schema_key(key: str) -> bool:
    """Whether ``key`` is a key a store of this schema holds: a node's ``zarr.json`` or a
    chunk key ``<array>/c/<i>/<j>/...`` with one non-negative index per dimension."""
    if key == "zarr.json":
        return True
    node, sep, leaf = key.rpartition("/")
    if sep and leaf == "zarr.json":
        return node in _group_paths() or spec_for(node) is not None
    for spec in ARRAYS:
        for path, _ in _expand(spec.path):
            prefix = f"{path}/c/"
            if key.startswith(prefix):
                parts = key[len(prefix) :].split("/")
                return len(parts) == spec.ndim and all(_INDEX.match(p) for p in parts)
    return False


def expected(
    meta: StoreMeta, path: str
) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None, str, str | int] | None:
    """(shape, chunks, dtype, fill) the layout prescribes for ``path``; None for a path that
    is no array of the schema. ``dtype`` is resolved (``"logits"`` -> the store's dtype)."""
    spec = spec_for(path)
    if spec is None or (spec.sparse is not None and spec.sparse != (meta.sparse is not None)):
        return None
    if spec.sparse:
        found = expected_sparse(meta, path)
        return None if found is None else (*found, spec.fill)
    dtype = meta.dtype if spec.dtype == "logits" else spec.dtype
    shape = spec.shape(meta) if spec.shape is not None else None
    chunks = spec.chunks(meta) if spec.chunks is not None else None
    return shape, chunks, dtype, spec.fill


def grid_size(shape: tuple[int, ...], chunks: tuple[int, ...]) -> int:
    """Number of chunks of an array (no allocation, whatever the declared shape)."""
    return math.prod(-(-int(s) // max(1, int(c))) for s, c in zip(shape, chunks, strict=True))
