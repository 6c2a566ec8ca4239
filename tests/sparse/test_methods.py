"""Sparse sort/swap equal the dense result on every kept entry, bit for bit; tails unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sortkd_cache.sorting import sort_logits, swap_logits
from sortkd_cache.sparse import SparseSpec, apply_sparse, compress, label_positions, row_problems

pytestmark = pytest.mark.fast

REPO = Path(__file__).resolve().parents[2]
_PATHS = [
    REPO / "tests" / "data" / "sort_cases.npz",
    REPO.parent / "shared/reference/sort_cases.npz",
]
CASES = dict(np.load(next(p for p in _PATHS if p.is_file())))
NAMES = sorted({k.rsplit("_", 1)[0] for k in CASES})
DENSE = {"sort": sort_logits, "swap": swap_logits}


def bits(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    out: np.ndarray[Any, Any] = a.view({2: np.uint16, 4: np.uint32}[a.dtype.itemsize])
    return out


def same(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> bool:
    """Bit for bit (IEEE totalOrder throughout: -0.0 and +0.0 are different values)."""
    return bool(np.array_equal(bits(a), bits(b)))


def check_exact(method: str, z: np.ndarray[Any, Any], y: np.ndarray[Any, Any], k: int) -> None:
    spec = SparseSpec(k, z.shape[1], str(z.dtype))
    rows = compress(z, y, spec)
    out = apply_sparse(method, rows, y)
    dense = DENSE[method](z, y)
    kept = np.take_along_axis(dense, out.ids.astype(np.int64), axis=1)
    assert same(kept, out.values)
    # the sparse form of the dense result: same kept values and bit-identical tail columns
    ref = compress(dense, y, spec)
    assert same(ref.values, out.values)
    assert np.array_equal(bits(ref.stats[:, 3:]), bits(out.stats[:, 3:]))
    assert np.array_equal(bits(rows.stats[:, 1:]), bits(out.stats[:, 1:]))  # only 'label' moves
    # the label holds the maximum: kept, unless tied with the K-th kept value (lower ids first)
    out_rows = label_positions(out.ids, y) < 0
    assert same(out.stats[out_rows, :1], out.values[out_rows, -1:])
    assert row_problems(spec, out, y) == []


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("method", ["sort", "swap"])
def test_reference_cases(name: str, method: str) -> None:
    z, y = CASES[f"{name}_logits"], CASES[f"{name}_labels"].astype(np.int64)
    c = z.shape[1]
    for k in sorted({1, 2, min(5, c - 1), c // 2, c - 1}):
        check_exact(method, z, y, k)
        # and against the shared expected outputs, restricted to the kept ids
        out = apply_sparse(method, compress(z, y, SparseSpec(k, c, str(z.dtype))), y)
        want = np.take_along_axis(CASES[f"{name}_{method}"], out.ids.astype(np.int64), axis=1)
        assert same(want, out.values)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    c=st.integers(2, 40),
    data=st.data(),
    dtype=st.sampled_from(["float16", "float32"]),
    method=st.sampled_from(["sort", "swap"]),
)
def test_random_rows_with_ties(n: int, c: int, data: Any, dtype: str, method: str) -> None:
    k = data.draw(st.integers(1, c - 1))
    seed = data.draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    levels = data.draw(st.sampled_from([3, 50, 10_000]))  # few levels: many ties
    z = (rng.integers(-levels, levels, (n, c)) / 7).astype(dtype)
    y = rng.integers(0, c, n)
    check_exact(method, z, y, k)


def test_label_outside_top_k_takes_the_maximum() -> None:
    z = np.array([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0]], dtype=np.float16)
    y = np.array([4])
    rows = compress(z, y, SparseSpec(2, 6))
    assert label_positions(rows.ids, y).tolist() == [-1]
    out = apply_sparse("sort", rows, y)
    assert out.ids.tolist() == [[4, 0]] and out.values.tolist() == [[5.0, 4.0]]
    out = apply_sparse("swap", rows, y)
    assert out.ids.tolist() == [[4, 1]] and out.values.tolist() == [[5.0, 4.0]]
