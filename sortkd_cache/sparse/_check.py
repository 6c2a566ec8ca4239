"""Content checks of sparse rows (``verify``): ids in range, unique per row, label consistent."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from sortkd_cache.sparse._compress import order_key, rank_order
from sortkd_cache.sparse._spec import SparseRows, SparseSpec

__all__ = ["row_problems"]


def row_problems(spec: SparseSpec, rows: SparseRows, y: NDArray[Any]) -> list[str]:
    """What is wrong with 2-D sparse rows ``rows`` of labels ``y``; empty when sound."""
    out: list[str] = []
    ids = rows.ids.astype(np.int64)
    bad = (ids < 0) | (ids >= spec.num_classes)
    if bad.any():
        r = int(np.flatnonzero(bad.any(axis=1))[0])
        out.append(f"class id outside [0, {spec.num_classes}) in row {r}: {ids[r].tolist()}")
        return out
    srt = np.sort(ids, axis=1)
    dup = (srt[:, 1:] == srt[:, :-1]).any(axis=1)
    if dup.any():
        out.append(f"duplicate class id in row {int(np.flatnonzero(dup)[0])}")
    for name, arr in (("values", rows.values), ("stats", rows.stats)):
        if not np.isfinite(arr).all():
            out.append(
                f"non-finite {name} in row {int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])}"
            )
    if out:
        return out
    yy = np.asarray(y, dtype=np.int64)
    hit = ids == yy[:, None]
    rows_in = np.flatnonzero(hit.any(axis=1))
    label = rows.stats[:, spec.column("label")]
    label_key = order_key(label)  # one integer per bit pattern (no NaN here)
    at = order_key(rows.values[rows_in, hit[rows_in].argmax(axis=1)])
    mismatch = np.flatnonzero(at != label_key[rows_in])
    if mismatch.size:
        out.append(
            f"row {int(rows_in[mismatch[0]])}: the label's logit differs from its kept value"
        )
    outside = np.flatnonzero(~hit.any(axis=1))
    above = outside[label_key[outside] > order_key(rows.values[outside, -1])]
    if above.size:
        out.append(f"row {int(above[0])}: the label's logit exceeds the K-th kept value, not kept")
    order = rank_order(rows.values, ids)
    if (order != np.arange(ids.shape[1])[None, :]).any():
        r = int(np.flatnonzero((order != np.arange(ids.shape[1])).any(axis=1))[0])
        out.append(f"row {r}: kept entries are not in rank order")
    return out
