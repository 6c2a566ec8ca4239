"""Content checks of sparse rows: ids in range, unique per row, finite, label consistent, in
rank order. ``verify`` runs them over a whole store and every sparse reader over each chunk it
loads, so the sound path is a few whole-array passes in the arrays' own widths (a chunk of
16k rows of top-10 float16 takes about a millisecond); rows are located only on a failure."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from sortkd_cache.sparse._spec import SparseRows, SparseSpec

__all__ = ["row_problems"]

_SIGNED = {2: np.int16, 4: np.int32, 8: np.int64}


def _first_row(bad: NDArray[np.bool_]) -> int:
    """The first row (axis 0) with a True anywhere."""
    return int(np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))[0])


def _keys(values: NDArray[Any]) -> NDArray[Any]:
    """IEEE-754 totalOrder keys in the values' own width (the order of
    :func:`~sortkd_cache.sparse._compress.order_key`; no NaN here)."""
    v = np.ascontiguousarray(values)
    bits = v.view(_SIGNED[v.dtype.itemsize])
    shift = v.dtype.itemsize * 8 - 1
    flipped: NDArray[Any] = bits ^ ((bits >> shift) & ((1 << shift) - 1))
    return flipped


def _id_problem(spec: SparseSpec, ids: NDArray[Any]) -> str | None:
    low = 0 if ids.dtype.kind == "u" else int(ids.min())
    if low < 0 or int(ids.max()) >= spec.num_classes:
        wide = ids.astype(np.int64)
        r = _first_row((wide < 0) | (wide >= spec.num_classes))
        return f"class id outside [0, {spec.num_classes}) in row {r}: {wide[r].tolist()}"
    srt = np.sort(ids, axis=1)
    dup = srt[:, 1:] == srt[:, :-1]
    if dup.any():
        return f"duplicate class id in row {_first_row(dup)}"
    return None


def _label_problems(
    spec: SparseSpec, rows: SparseRows, keys: NDArray[Any], y: NDArray[Any]
) -> list[str]:
    out = []
    n = rows.ids.shape[0]
    hit = rows.ids == np.asarray(y).astype(rows.ids.dtype, copy=False)[:, None]
    kept = hit.any(axis=1)
    label_key = _keys(rows.stats[:, spec.column("label")])
    at = keys[np.arange(n), hit.argmax(axis=1)]
    mismatch = kept & (at != label_key)
    if mismatch.any():
        out.append(f"row {_first_row(mismatch)}: the label's logit differs from its kept value")
    above = ~kept & (label_key > keys[:, -1])
    if above.any():
        out.append(
            f"row {_first_row(above)}: the label's logit exceeds the K-th kept value, not kept"
        )
    return out


def row_problems(spec: SparseSpec, rows: SparseRows, y: NDArray[Any]) -> list[str]:
    """What is wrong with 2-D sparse rows ``rows`` of labels ``y``; empty when sound."""
    if rows.ids.size == 0:
        return []
    bad_ids = _id_problem(spec, rows.ids)
    if bad_ids is not None:
        return [bad_ids]
    out: list[str] = []
    for name, arr in (("values", rows.values), ("stats", rows.stats)):
        finite = np.isfinite(arr)
        if not finite.all():
            out.append(f"non-finite {name} in row {_first_row(~finite)}")
    if out:
        return out
    if np.any((np.asarray(y) < 0) | (np.asarray(y) >= spec.num_classes)):
        return ["labels outside the classes"]  # the store's labels are checked on open
    keys = _keys(rows.values)
    out += _label_problems(spec, rows, keys, y)
    ids = rows.ids
    a, b = keys[:, :-1], keys[:, 1:]
    ordered = (a > b) | ((a == b) & (ids[:, :-1] < ids[:, 1:]))
    if not ordered.all():
        out.append(f"row {_first_row(~ordered)}: kept entries are not in rank order")
    return out
