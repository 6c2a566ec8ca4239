"""``open_store`` and ``create_store`` take what zarr takes: a zarr ``Store`` object (here an
in-memory ``zarr.storage.MemoryStore``) as well as a path or a URL. A store object carries a
whole dump -> sort -> train through the Python API, and gives the same training as the store
the stages wrote to a directory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from zarr.storage import MemoryStore

import sortkd_cache as sk
from sortkd_cache.errors import StoreExistsError, StoreNotFoundError, StoreReadOnlyError


def _dump_into(store: sk.CacheStore, reference: sk.CacheStore) -> None:
    """The dump stage's writes: each (block, view) chunk of the teacher's logits with its
    augmentation parameters, progress last, then the raw kind and the record marked
    complete (the stage's own ``finalize``)."""
    from sortkd_cache.pipelines.dump import finalize

    raw = reference.logits("raw")
    store.create_kind("raw", str(raw.dtype), attrs={"source": "teacher"})
    for block in range(store.num_blocks):
        start, stop = store.block_bounds(block)
        for view in range(store.num_views):
            rows = raw.read_block(block, view)
            count = int((rows.argmax(axis=1) == reference.labels[start:stop]).sum())
            params = reference.params(view, start, stop)
            store.write_chunk("raw", block, view, rows, params=params, count=count)
    finalize(store, reference.meta.dump_seconds)


def _sort_into(store: sk.CacheStore) -> None:
    """The sort stage's writes: the ``sort`` kind made with ``sk.sort_logits``, chunk by chunk."""
    raw = store.logits("raw")
    store.create_kind("sort", str(raw.dtype))
    for block in range(store.num_blocks):
        start, stop = store.block_bounds(block)
        for view in range(store.num_views):
            rows = sk.sort_logits(raw.read_block(block, view), store.labels[start:stop])
            store.write_chunk("sort", block, view, rows, count=stop - start)
    store.set_kind_attrs("sort", {"complete": True, "method": "sort", "source": "raw"})


def _losses(store: sk.CacheStore, epochs: int) -> list[float]:
    """KD with ``sort`` soft labels in a plain PyTorch loop (the train stage's defaults)."""
    torch.manual_seed(0)
    batches = sk.EpochBatches.from_store(store, "sort", batch_size=32, seed=0)
    model = sk.create_model("digits_mlp", store.num_classes, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loss_fn = sk.make_loss("kd")
    losses = []
    for epoch in range(epochs):
        for b in batches.epoch(epoch):
            loss, _ = sk.compute_loss(loss_fn, model(b.x), b.soft, b.y, epoch=epoch + 1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses


def test_an_in_memory_store_object_runs_dump_sort_train(small_store: Path, tmp_path: Path) -> None:
    from sortkd_cache.pipelines.train import TrainConfig, train

    torch.set_num_threads(1)
    reference = sk.open_store(small_store)
    memory = MemoryStore()
    meta = dataclasses.replace(reference.meta, complete=False, teacher_accuracy=())
    written = sk.create_store(memory, meta, reference.labels)
    _dump_into(written, reference)
    _sort_into(sk.open_store(memory, "r+"))

    store = sk.open_store(memory)  # read-only: a view of the object
    assert store.meta == reference.meta and store.kinds() == ["raw", "sort"]
    assert store.meta.teacher_accuracy == reference.meta.teacher_accuracy
    for kind in ("raw", "sort"):
        np.testing.assert_array_equal(store.logits(kind)[:], reference.logits(kind)[:])
    np.testing.assert_array_equal(store.params(1), reference.params(1))
    report = sk.verify_store(memory, progress=False)
    assert report.sound and report.chunks_checked > 0, report.problems

    cfg = TrainConfig(
        cache=str(small_store), student="digits_mlp", loss="kd", logits="sort", epochs=2,
        milestones=(), batch_size=32, out=str(tmp_path / "run"), progress=False, device="cpu",
    )  # fmt: skip
    assert _losses(store, 2) == train(cfg).step_losses


def test_a_store_object_is_refused_as_zarr_would(small_store: Path) -> None:
    empty = MemoryStore()
    with pytest.raises(StoreNotFoundError, match="no store at '<MemoryStore"):
        sk.open_store(empty)
    reference = sk.open_store(small_store)
    memory = MemoryStore()
    sk.create_store(memory, reference.meta, reference.labels)
    with pytest.raises(StoreExistsError, match="already exists"):
        sk.create_store(memory, reference.meta, reference.labels)
    read_only = memory.with_read_only(True)
    with pytest.raises(StoreReadOnlyError):
        sk.create_store(read_only, reference.meta, reference.labels, overwrite=True)
    opened = sk.open_store(memory)
    with pytest.raises(StoreReadOnlyError):
        opened.create_kind("raw", "float16")
