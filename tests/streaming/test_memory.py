"""Peak soft-label memory of a streamed epoch, measured on two stores 4x apart in size."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import torch

import sortkd_cache as sk
from sortkd_cache.batches import _batches_of
from sortkd_cache.soft_labels import Batch
from sortkd_cache.streaming import StreamedLogits, StreamLayout, streamed_order

C, CHUNK, BATCH = 1000, 64, 64


def _store(path: Path, n: int) -> sk.CacheStore:
    """A complete float16 store of n samples, 1 view, random logits (no teacher run)."""
    from sortkd_cache.store import DatasetRecord, StoreMeta, TeacherRecord, create_store

    labels = np.arange(n) % C
    meta = StoreMeta(
        num_samples=n,
        num_views=1,
        num_classes=C,
        chunk_samples=CHUNK,
        dtype="float16",
        seed=0,
        dataset=DatasetRecord(
            "synthetic",
            f"synthetic:{n}",
            "train",
            "sha256:" + "0" * 64,
            n,
            C,
            3,
            (8, 8),
            (0.5,) * 3,
            (0.25,) * 3,
        ),
        teacher=TeacherRecord(arch="synthetic", sha256=None, init="random"),
        augment={"name": "none"},
        tool_version="test",
        created="test",
    )
    store = create_store(path, meta, labels, overwrite=True)
    store.create_kind("raw", "float16", overwrite=True)
    rng = np.random.default_rng(n)
    zeros = np.zeros((CHUNK, 5), np.int32)
    for block in range(store.num_blocks):
        start, stop = store.block_bounds(block)
        z = rng.standard_normal((stop - start, C)).astype(np.float16)
        store.write_chunk("raw", block, 0, z, params=zeros[: stop - start])
    store.set_kind_attrs("raw", {"kind": "raw", "complete": True})
    store.write_meta(store.meta.replace(complete=True))
    return sk.open_store(path)


def _streamed_epoch(store: sk.CacheStore) -> tuple[int, int, int]:
    """(rows served, counted peak bytes, tracemalloc peak bytes) of one streamed epoch."""
    n = store.num_samples
    layout = StreamLayout(n, CHUNK, lanes=4, window=2)
    order = torch.from_numpy(streamed_order(layout, BATCH, seed=0, epoch=0))
    batches = _batches_of(order, BATCH)
    source = StreamedLogits(store, "raw", prefetch=4)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    served = 0
    try:
        source.begin_epoch(0, order, None)
        for idx in batches:
            rows = source.rows(Batch(torch.zeros(0), torch.zeros(0), idx))
            served += rows.shape[0]
        source.close()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return served, source.peak_bytes, peak


def test_peak_soft_label_memory_does_not_grow_with_n(tmp_path: Path) -> None:
    small = _streamed_epoch(_store(tmp_path / "small.zarr", 2_048))
    large = _streamed_epoch(_store(tmp_path / "large.zarr", 8_192))  # 4x the samples
    assert (small[0], large[0]) == (2_048, 8_192)
    chunk_bytes = CHUNK * C * 2
    # two windows per lane at a window boundary, the epoch's tail, four chunks read ahead
    bound = (2 * 4 * 2 + 4 + 4) * chunk_bytes
    assert small[1] <= bound and large[1] <= bound, (small, large, bound)
    # everything python allocated during the epoch (zarr's reads and decompression, the
    # reader's bookkeeping of 8-byte indices, the gathered batches) stays far below one view
    view_bytes = 8_192 * C * 2
    assert large[2] < view_bytes / 3, (large, view_bytes)
    assert large[2] < 2 * small[2] + 8_192 * 8 * 4, (small, large)
