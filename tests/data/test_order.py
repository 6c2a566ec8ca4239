"""The streamed epoch order: a permutation, seeded by (seed, epoch), rank-independent, local."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sortkd_cache.data import StreamLayout, auto_lanes, shard_order, streamed_order
from sortkd_cache.errors import ConfigError

LAYOUTS = [
    # (num_samples, chunk_samples, lanes, window, batch)
    (1000, 64, 4, 2, 32),
    (1000, 64, 8, 4, 64),
    (777, 50, 2, 3, 10),  # ragged last chunk, batch not a multiple of a chunk
    (100, 64, 8, 4, 16),  # fewer chunks than lanes
    (5, 2, 1, 1, 2),
]


def _shard(order: np.ndarray, batch: int, rank: int, world: int) -> np.ndarray:
    """This rank's part of the global order, cut exactly as the train stage does."""
    return shard_order(torch.from_numpy(order), batch, rank, world).numpy()


def _live_chunks(order: np.ndarray, chunk: int, batch: int) -> int:
    """The most chunks any batch boundary finds between their first and last use."""
    blocks = order // chunk
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for pos, b in enumerate(blocks.tolist()):
        first.setdefault(b, pos)
        last[b] = pos
    peak = 0
    for end in range(batch, len(order) + batch, batch):  # live while serving batch [end-batch, end)
        lo = end - batch
        peak = max(peak, sum(1 for b in first if first[b] < end and last[b] >= lo))
    return peak


@pytest.mark.parametrize(("n", "chunk", "lanes", "window", "batch"), LAYOUTS)
def test_order_is_a_permutation_seeded_by_seed_and_epoch(n, chunk, lanes, window, batch) -> None:
    layout = StreamLayout(n, chunk, lanes, window)
    a = streamed_order(layout, batch, seed=3, epoch=0)
    assert a.dtype == np.int64 and np.array_equal(np.sort(a), np.arange(n))
    assert np.array_equal(a, streamed_order(layout, batch, seed=3, epoch=0))
    if n > 10:
        assert not np.array_equal(a, streamed_order(layout, batch, seed=3, epoch=1))
        assert not np.array_equal(a, streamed_order(layout, batch, seed=4, epoch=0))


@pytest.mark.parametrize(
    ("n", "chunk", "lanes", "window", "batch", "world"),
    [(*LAYOUTS[0], 2), (*LAYOUTS[0], 4), (*LAYOUTS[1], 2), (*LAYOUTS[1], 8), (*LAYOUTS[2], 2)],
)
def test_ranks_put_together_give_the_single_process_batches(
    n, chunk, lanes, window, batch, world
) -> None:
    layout = StreamLayout(n, chunk, lanes, window)
    order = streamed_order(layout, batch, seed=1, epoch=2)
    single = _shard(order, batch, 0, 1)
    parts = [_shard(order, batch, r, world) for r in range(world)]
    local = batch // world
    rebuilt = []
    for k in range(len(parts[0]) // local + 1):
        for p in parts:
            rebuilt.append(p[k * local : (k + 1) * local])
    rebuilt_order = np.concatenate(rebuilt)
    # the same global batches; only the < world leftover samples of the last one are skipped
    assert np.array_equal(rebuilt_order, single[: len(rebuilt_order)])
    assert len(single) - len(rebuilt_order) < world
    # each rank reads its own lanes' chunks (and, at the very end, a few tail chunks)
    # every lane holds at least num_blocks // lanes - 1 whole chunks: the steps before any
    # lane runs out (a lower bound)
    steps = max(0, layout.num_blocks // lanes - 1) * chunk // (batch // lanes)
    head = steps * local
    assert head > 0
    owned = [set((p[:head] // chunk).tolist()) for p in parts]
    for r in range(world):
        for q in range(r + 1, world):
            assert not owned[r] & owned[q]


def test_live_chunks_are_bounded_by_the_window_not_by_n() -> None:
    chunk, lanes, window, batch = 32, 4, 2, 32
    peaks = []
    for n in (4_000, 16_000):  # 4x more samples
        order = streamed_order(StreamLayout(n, chunk, lanes, window), batch, seed=0, epoch=0)
        peaks.append(_live_chunks(order, chunk, batch))
    bound = 2 * lanes * window + lanes  # two windows per lane at a boundary, plus the tail
    assert max(peaks) <= bound, peaks
    # a plain random permutation touches (almost) every chunk at once
    plain = np.random.default_rng(0).permutation(4_000)
    assert _live_chunks(plain, chunk, batch) > 4 * bound


def test_auto_lanes_and_bad_layouts() -> None:
    assert [auto_lanes(b) for b in (64, 100, 96, 7, 2)] == [8, 5, 8, 7, 2]
    with pytest.raises(ConfigError, match="window"):
        StreamLayout(10, 2, 1, 0)
    with pytest.raises(ConfigError, match="multiple of the 8 stream lanes"):
        streamed_order(StreamLayout(100, 10, 8), 12, 0, 0)
    with pytest.raises(ConfigError, match="3 ranks do not divide the 8"):
        StreamLayout(100, 10, 8).check_batch(24, world=3)
