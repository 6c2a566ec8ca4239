"""Streamed soft labels on a real store: the same (sample, view, soft label) as whole views."""

from __future__ import annotations

import pytest
import torch

import sortkd_cache as sk
from sortkd_cache.data import (
    Batch,
    StreamedLogits,
    epoch_order,
    plan_soft_labels,
    read_view_logits,
    shard_order,
)
from sortkd_cache.data import _plan as _stream_source
from sortkd_cache.data._batches import _batches_of
from sortkd_cache.errors import ConfigError

BATCH = 16
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> sk.CacheStore:
    from sortkd_cache.pipelines.dump import DumpConfig, dump

    out = tmp_path_factory.mktemp("stream") / "s.zarr"
    cfg = DumpConfig(
        dataset="fake:200:10:8",
        teacher="digits_mlp",
        teacher_init="random",
        out=str(out),
        views=3,
        chunk_samples=24,  # 9 chunks, the last one short
        progress=False,
        device="cpu",
    )
    dump(cfg)
    return sk.open_store(out)


def _shard(order: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    return shard_order(order, BATCH, rank, world)


def _whole_view(store: sk.CacheStore, epoch: int) -> list[tuple[int, int, bytes]]:
    view = epoch % store.num_views
    soft = read_view_logits(store, "raw", view)
    out = []
    for idx in _batches_of(epoch_order(store.num_samples, 0, epoch), BATCH):
        out += [(int(i), view, soft[int(i)].tobytes()) for i in idx]
    return out


def _streamed(store: sk.CacheStore, epoch: int, world: int) -> list[tuple[int, int, bytes]]:
    view = epoch % store.num_views
    plan = plan_soft_labels("stream", store, batch_size=BATCH, world=world, window=2)
    order = plan.order(store.num_samples, BATCH, 0, epoch)
    out = []
    for rank in range(world):
        local = _shard(order, rank, world)
        src = StreamedLogits(store, "raw", CPU, prefetch=2)
        src.begin_epoch(view, local, None)
        for idx in _batches_of(local, BATCH // world):
            rows = src.rows(Batch(torch.zeros(len(idx)), torch.zeros(len(idx)), idx))
            assert rows.dtype == torch.float16 and rows.shape == (len(idx), 10)
            out += [(int(i), view, rows[k].numpy().tobytes()) for k, i in enumerate(idx)]
        src.close()
    return out


@pytest.mark.parametrize("world", [1, 2])
def test_streamed_and_whole_view_give_the_same_multiset(store: sk.CacheStore, world: int) -> None:
    for epoch in range(3):
        want, got = _whole_view(store, epoch), _streamed(store, epoch, world)
        assert sorted(got) == sorted(want)
        assert len({s for s, _, _ in got}) == store.num_samples


def test_auto_streams_past_the_threshold(store: sk.CacheStore, monkeypatch) -> None:
    plan = plan_soft_labels("auto", store, batch_size=BATCH, world=1)
    assert plan.mode == "view" and plan.describe() == {"soft_labels": "view"}
    with pytest.raises(ConfigError, match="no streamed order"):
        plan.order(200, BATCH, 0, 0)
    monkeypatch.setattr(_stream_source, "STREAM_THRESHOLD_BYTES", 200 * 10 * 2 - 1)
    plan = plan_soft_labels("auto", store, batch_size=BATCH, world=2)
    assert plan.describe() == {"soft_labels": "stream", "stream_lanes": 8, "stream_window": 2}


def test_bad_soft_label_options(store: sk.CacheStore) -> None:
    with pytest.raises(ConfigError, match="unknown --soft-labels 'chunky'"):
        plan_soft_labels("chunky", store, batch_size=BATCH, world=1)
    with pytest.raises(ConfigError, match="needs --cache"):
        plan_soft_labels("stream", None, batch_size=BATCH, world=1)
    with pytest.raises(ConfigError, match="3 ranks do not divide the 8 stream lanes"):
        plan_soft_labels("stream", store, batch_size=24, world=3)
    with pytest.raises(ConfigError, match="window"):
        plan_soft_labels("stream", store, batch_size=BATCH, world=1, window=0)


def test_rows_need_an_epoch(store: sk.CacheStore) -> None:
    src = StreamedLogits(store, "raw", CPU)
    with pytest.raises(ConfigError, match="begin_epoch"):
        src.rows(Batch(torch.zeros(3), torch.zeros(3), torch.arange(3)))


def test_ranks_batches_put_together_are_the_single_process_batches(store: sk.CacheStore) -> None:
    """The library's data path, per step: rank 0's then rank 1's batch of a 2-rank streamed
    epoch are the 1-rank batch (the same samples, replayed images and soft labels)."""
    from sortkd_cache.augment import AugmentRecipe
    from sortkd_cache.data import StoredViews, load_store_dataset

    data = load_store_dataset(store)
    recipe = AugmentRecipe.from_dict(store.meta.augment)
    plan = plan_soft_labels("stream", store, batch_size=BATCH, world=2, window=2)

    def batches(rank: int, world: int) -> sk.EpochBatches:
        soft = StreamedLogits(store, "raw", CPU, prefetch=2)
        views = StoredViews(store)
        kw = {"batch_size": BATCH, "rank": rank, "world": world, "order": plan.order}
        return sk.EpochBatches(data, recipe, views, soft, **kw)

    for epoch in range(2):
        single = list(batches(0, 1).epoch(epoch))
        ranks = [list(batches(r, 2).epoch(epoch)) for r in range(2)]
        assert len(ranks[0]) == len(ranks[1]) == len(single) == -(-store.num_samples // BATCH)
        for k, one in enumerate(single):
            parts = [ranks[r][k] for r in range(2)]
            assert [len(p.idx) for p in parts] == [len(one.idx) // 2] * 2
            assert torch.equal(torch.cat([p.idx for p in parts]), one.idx)
            assert torch.equal(torch.cat([p.x for p in parts]), one.x)
            assert torch.equal(torch.cat([p.soft for p in parts]), one.soft)
