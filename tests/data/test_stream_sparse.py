"""Streamed soft labels from a sparse (top-K) store: the same rows as whole views, chunk by
chunk in the same order as a dense store, and the cached == online twin on that path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sortkd_cache as sk
from sortkd_cache.data import (
    Batch,
    SparseViewSource,
    StreamedLogits,
    epoch_order,
    plan_soft_labels,
    shard_order,
    store_soft_labels,
    view_bytes,
)
from sortkd_cache.data import _plan as _stream_source
from sortkd_cache.data._batches import _batches_of
from sortkd_cache.losses import SparseTeacher
from sortkd_cache.testing import small_dump

BATCH, K, C = 16, 3, 10
CPU = torch.device("cpu")
Row = tuple[int, int, tuple[int, ...], bytes, bytes]


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 samples in 9 chunks of 24 (the last one short), 3 views, top-3 of float16 logits."""
    out = tmp_path_factory.mktemp("stream-sparse") / "s.zarr"
    return small_dump(out, teacher="digits_mlp", chunk_samples=24, topk=K)


@pytest.fixture(scope="module")
def store(path: Path) -> sk.CacheStore:
    store = sk.open_store(path)
    assert store.is_sparse and store.sparse_spec.k == K
    return store


def _keys(idx: torch.Tensor, view: int, t: SparseTeacher) -> list[Row]:
    assert isinstance(t, SparseTeacher) and t.ids.dtype == torch.int64
    assert t.values.dtype == t.stats.dtype == torch.float16 and t.ids.shape == (len(idx), K)
    return [
        (int(i), view, tuple(t.ids[k].tolist()), t.values[k].numpy().tobytes(),
         t.stats[k].numpy().tobytes())
        for k, i in enumerate(idx)
    ]  # fmt: skip


def _whole_view(store: sk.CacheStore, epoch: int) -> list[Row]:
    view = epoch % store.num_views
    src = store_soft_labels(store, "raw", CPU)
    assert isinstance(src, SparseViewSource)
    order = epoch_order(store.num_samples, 0, epoch)
    src.begin_epoch(view, order, None)
    out = []
    for idx in _batches_of(order, BATCH):
        out += _keys(idx, view, src.rows(Batch(torch.zeros(len(idx)), torch.zeros(len(idx)), idx)))
    src.close()
    return out


def _streamed(store: sk.CacheStore, epoch: int, world: int) -> tuple[list[Row], list[int]]:
    view = epoch % store.num_views
    plan = plan_soft_labels("stream", store, batch_size=BATCH, world=world, window=2)
    order = plan.order(store.num_samples, BATCH, 0, epoch)
    out, peaks = [], []
    for rank in range(world):
        local = shard_order(order, BATCH, rank, world)
        src = StreamedLogits(store, "raw", CPU, prefetch=2)
        src.begin_epoch(view, local, None)
        for idx in _batches_of(local, BATCH // world):
            batch = Batch(torch.zeros(len(idx)), torch.zeros(len(idx)), idx)
            out += _keys(idx, view, src.rows(batch))
        stats = src.epoch_stats()
        assert stats["chunks"] == sorted(set((local // store.chunk_samples).tolist()))
        peaks.append(stats["peak_bytes"])
        src.close()
    return out, peaks


@pytest.mark.parametrize("world", [1, 2])
def test_streamed_and_whole_view_sparse_give_the_same_multiset(
    store: sk.CacheStore, world: int
) -> None:
    per_row = store.sparse_spec.bytes_per_row  # uint8 ids, float16 values and stats
    for epoch in range(3):
        want = _whole_view(store, epoch)
        got, peaks = _streamed(store, epoch, world)
        assert sorted(got) == sorted(want)
        assert len({s for s, *_ in got}) == store.num_samples
        # resident: whole chunks of rows, their ids kept as uint8 (not widened to int64)
        assert all(p % per_row == 0 and 0 < p <= view_bytes(store) for p in peaks), peaks


def test_auto_measures_the_sparse_view(store: sk.CacheStore, monkeypatch) -> None:
    spec = store.sparse_spec
    assert view_bytes(store) == 200 * (K * (1 + 2) + 2 * spec.num_stats)
    assert plan_soft_labels("auto", store, batch_size=BATCH, world=1).mode == "view"
    monkeypatch.setattr(_stream_source, "STREAM_THRESHOLD_BYTES", view_bytes(store) - 1)
    plan = plan_soft_labels("auto", store, batch_size=BATCH, world=2)
    assert plan.describe() == {"soft_labels": "stream", "stream_lanes": 8, "stream_window": 2}


def _train(store: Path, out: Path, **kw: Any) -> Any:
    from sortkd_cache.pipelines.train import TrainConfig, train

    base: dict[str, Any] = {
        "student": "digits_mlp",
        "epochs": 2,
        "milestones": (1,),
        "batch_size": 32,
        "loss": "kd",
        "logits": "sort",
        "soft_labels": "stream",
        "progress": False,
        "device": "cpu",
    }
    return train(TrainConfig(cache=str(store), out=str(out), **{**base, **kw}))


def test_cached_sparse_equals_online_twin_on_the_streamed_path(path: Path, tmp_path: Path) -> None:
    from sortkd_cache.pipelines.sort import SortConfig, sort_store

    sorted_store = tmp_path / "sorted.zarr"
    sort_store(SortConfig(store=str(path), out=str(sorted_store), progress=False))
    cached = _train(sorted_store, tmp_path / "cached")
    online = _train(
        sorted_store, tmp_path / "online", online_teacher="digits_mlp", teacher_init="random"
    )
    assert len(cached.step_losses) == len(online.step_losses) == 2 * (200 // 32 + 1)
    x, y = np.asarray(cached.step_losses), np.asarray(online.step_losses)
    assert float(np.max(np.abs(x - y) / np.abs(y))) <= 1e-4
    whole = _train(sorted_store, tmp_path / "view", soft_labels="view")
    assert sorted(whole.step_losses) != sorted(cached.step_losses)  # another order
    resolved = json.loads((tmp_path / "cached" / "config.json").read_text())["resolved"]
    assert resolved["soft_labels"] == "stream"
    rows = [json.loads(r) for r in (tmp_path / "cached" / "metrics.jsonl").read_text().splitlines()]
    assert [r["stream_chunks"] for r in rows] == [[list(range(9))]] * 2


def test_truncated_dense_stream_records_its_chunks(small_store: Path, tmp_path: Path) -> None:
    """``train --topk`` on a dense store wraps the streamed source: the figures still come."""
    _train(small_store, tmp_path / "run", epochs=1, topk=3, logits="raw")
    row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert row["stream_chunks"] == [[0, 1]] and row["stream_peak_bytes"][0] > 0
