"""Peak soft-label memory of a streamed epoch, measured on two stores 4x apart in size."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

import sortkd_cache as sk
from sortkd_cache.data import Batch, StreamedLogits, StreamLayout, streamed_order
from sortkd_cache.data._batches import _batches_of

C, CHUNK, BATCH = 1000, 64, 64


def _store(path: Path, n: int, c: int = C) -> sk.CacheStore:
    """A complete float16 store of n samples and c classes, 1 view, random logits (no teacher
    run)."""
    from sortkd_cache.augment import get_recipe
    from sortkd_cache.store import DatasetRecord, StoreMeta, TeacherRecord, create_store

    labels = np.arange(n) % c
    meta = StoreMeta(
        num_samples=n,
        num_views=1,
        num_classes=c,
        chunk_samples=CHUNK,
        dtype="float16",
        seed=0,
        dataset=DatasetRecord(
            "synthetic",
            f"synthetic:{n}",
            "train",
            "sha256:" + "0" * 64,
            n,
            c,
            3,
            (8, 8),
            (0.5,) * 3,
            (0.25,) * 3,
        ),
        teacher=TeacherRecord(arch="synthetic", sha256=None, init="random"),
        augment=get_recipe("none").to_dict(),
        tool_version="test",
        created="test",
    )
    store = create_store(path, meta, labels, overwrite=True)
    store.create_kind("raw", "float16", overwrite=True)
    rng = np.random.default_rng(n)
    zeros = np.zeros((CHUNK, 5), np.int32)
    for block in range(store.num_blocks):
        start, stop = store.block_bounds(block)
        z = rng.standard_normal((stop - start, c)).astype(np.float16)
        store.write_chunk("raw", block, 0, z, params=zeros[: stop - start])
    store.set_kind_attrs("raw", {"kind": "raw", "complete": True})
    store.write_meta(store.meta.replace(complete=True))
    return sk.open_store(path)


def _streamed_epoch(store: sk.CacheStore) -> tuple[int, int, int]:  # dense or sparse
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
            served += len(rows)
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


@pytest.mark.slow  # copy --topk records the fidelity of every row (seconds)
def test_sparse_peak_memory_does_not_grow_with_n(tmp_path: Path) -> None:
    """The same on top-16 copies (``copy --topk``) of stores with C = 300: whole chunks of ids
    (uint16), values and stats resident, a few at a time, whatever N."""
    from sortkd_cache.pipelines.copy import DeriveConfig, derive_store

    runs = []
    for name, n in (("small", 1_024), ("large", 4_096)):
        dense = _store(tmp_path / f"{name}.zarr", n, c=300)
        derive_store(dense.url, str(tmp_path / f"{name}-top16.zarr"), DeriveConfig(topk=16))
        sparse = sk.open_store(tmp_path / f"{name}-top16.zarr")
        assert sparse.is_sparse and sparse.sparse_spec.id_dtype == np.uint16
        runs.append(_streamed_epoch(sparse))
    small, large = runs
    assert (small[0], large[0]) == (1_024, 4_096)
    chunk_bytes = CHUNK * sparse.sparse_spec.bytes_per_row
    bound = (2 * 4 * 2 + 4 + 4) * chunk_bytes
    assert small[1] <= bound and large[1] <= bound, (small, large, bound)
    assert small[1] % chunk_bytes == 0 and large[1] % chunk_bytes == 0  # ids kept narrow
    assert large[2] < 2 * small[2] + 4_096 * 8 * 4, (small, large)
