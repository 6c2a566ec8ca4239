"""Sparse soft labels for training: whole views, the online twin, the dataset wrapper."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sortkd_cache as sk
from sortkd_cache.data import Batch, SparseViewSource, online_sparse_teacher, read_sparse_view
from sortkd_cache.errors import ConfigError
from sortkd_cache.testing import topk_store

FAST: dict[str, Any] = {"teacher": "digits_mlp", "views": 2}


@pytest.fixture
def stores(make_store: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path]:
    dense = make_store("d.zarr", dtype="float32", **FAST)
    sparse = tmp_path / "s.zarr"
    topk_store(dense, sparse, 3, sort=True)
    return dense, sparse


def test_online_truncation_equals_the_cache(stores: tuple[Path, Path]) -> None:
    dense, sparse = sk.open_store(stores[0]), sk.open_store(stores[1])
    y = torch.from_numpy(dense.labels)
    idx = torch.tensor([5, 0, 17])
    for kind in ("raw", "sort"):
        source = SparseViewSource(sparse, kind)
        for v in range(dense.num_views):
            z = torch.from_numpy(dense.logits("raw")[:, v])
            online = online_sparse_teacher(sparse.sparse_spec, z, y, kind)
            cached = read_sparse_view(sparse, kind, v)
            assert torch.equal(online.ids, torch.from_numpy(cached.ids.astype(np.int64)))
            assert torch.equal(online.values, torch.from_numpy(cached.values))
            assert torch.equal(online.stats, torch.from_numpy(cached.stats))
            source.begin_epoch(v, torch.arange(sparse.num_samples), None)
            rows = source.rows(Batch(torch.zeros(3), y[idx], idx))
            assert torch.equal(rows.ids, online.ids[idx])
            assert torch.equal(rows.values, online.values[idx].to(rows.values.dtype))
            assert torch.equal(rows.stats, online.stats[idx])
        source.close()


def test_cached_view_dataset_rebuilds_sparse_rows(stores: tuple[Path, Path]) -> None:
    dense, sparse = sk.open_store(stores[0]), sk.open_store(stores[1])
    with pytest.raises(ConfigError, match="temperature=T"):
        sk.CachedViewDataset(sparse, kind="sort")
    data = sk.CachedViewDataset(sparse, kind="raw", temperature=4.0)
    ref = sk.CachedViewDataset(dense, kind="raw")
    for i in (0, 7, 42):
        x, y, soft = data[i]
        x_ref, y_ref, dense_soft = ref[i]
        assert torch.equal(x, x_ref) and y == y_ref
        p, q = torch.softmax(dense_soft.double() / 4, 0), torch.softmax(soft.double() / 4, 0)
        kept = torch.from_numpy(sparse.sparse_logits("raw")[i, 0].ids.astype(np.int64))
        torch.testing.assert_close(q[kept], p[kept], rtol=1e-5, atol=1e-7)


def test_view_source_batches_carry_their_view(stores: tuple[Path, Path]) -> None:
    sparse = sk.open_store(stores[1])
    source = SparseViewSource(sparse, "sort")
    try:
        source.begin_epoch(1, torch.arange(sparse.num_samples), None)
        idx = torch.tensor([5, 0, 17])
        y = torch.from_numpy(sparse.labels)[idx]
        rows = source.rows(Batch(torch.zeros(3), y, idx))
        cached = read_sparse_view(sparse, "sort", 1)[idx.numpy()]
        assert torch.equal(rows.ids, torch.from_numpy(cached.ids.astype(np.int64)))
        assert torch.equal(rows.values, torch.from_numpy(cached.values))
        assert torch.equal(rows.stats, torch.from_numpy(cached.stats))
        assert rows.view is not None and rows.idx is not None
        assert torch.equal(rows.view.slots[rows.idx][:, -1], y)
    finally:
        source.close()
