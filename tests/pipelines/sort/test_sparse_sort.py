"""The sort stage on sparse stores equals the dense stage restricted to the kept ids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import sortkd_cache as sk
from sortkd_cache.pipelines.sort import SortConfig, sort_store
from sortkd_cache.store import verify_store
from sortkd_cache.testing import invoke

MakeStore = Callable[..., Path]
FAST: dict[str, Any] = {"teacher": "digits_mlp", "views": 2}


def bits(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    out: np.ndarray[Any, Any] = a.view(np.uint8)
    return out


@pytest.mark.parametrize("method", ["sort", "swap"])
def test_sparse_sort_stage_matches_dense(
    make_store: MakeStore, tmp_path: Path, method: str
) -> None:
    dense_path, sparse_path = make_store("d.zarr", **FAST), make_store("s.zarr", topk=3, **FAST)
    dense_res = sort_store(SortConfig(store=str(dense_path), method=method, progress=False))
    out = tmp_path / "sorted.zarr"
    cfg = SortConfig(store=str(sparse_path), method=method, out=str(out), progress=False)
    sparse_res = sort_store(cfg)
    assert sparse_res.stats["changed_rows"] == dense_res.stats["changed_rows"]
    dense, raw, sparse = sk.open_store(dense_path), sk.open_store(sparse_path), sk.open_store(out)
    assert sparse.kinds() == [method] and sparse.is_sparse
    for v in range(dense.num_views):
        got = sparse.sparse_logits(method)[:, v]
        want = np.take_along_axis(dense.logits(method)[:, v], got.ids.astype(np.int64), axis=1)
        assert np.array_equal(bits(got.values), bits(want))
        before = raw.sparse_logits("raw")[:, v]
        assert np.array_equal(bits(got.stats[:, 1:]), bits(before.stats[:, 1:]))  # tails kept
    assert verify_store(out).sound
    # resuming a finished stage writes nothing
    again = sort_store(cfg)
    assert again.skipped and again.chunks_written == 0


def test_sort_topk_on_a_sparse_store_exits_2(make_store: MakeStore) -> None:
    path = make_store("s.zarr", topk=3, **FAST)
    result = invoke("sort", str(path), "--topk", "2", catch_exceptions=False)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "sort --topk is retired" in lines[0]
    assert sk.open_store(path).kinds() == ["raw"]
