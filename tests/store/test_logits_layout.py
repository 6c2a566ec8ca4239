"""One contract for the logits layouts that serve every loss: what ``store.layout`` answers,
dense, sparse top-K and quantized alike."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import sortkd_cache as sk
from sortkd_cache.data import Batch, plan_soft_labels, store_soft_labels
from sortkd_cache.errors import LogitsKindError
from sortkd_cache.losses import compute_loss, make_loss
from sortkd_cache.pipelines.sort import SortConfig, sort_store
from sortkd_cache.store import DenseLayout, QuantLayout, SparseLayout, layout_of
from sortkd_cache.testing import small_dump

pytestmark = pytest.mark.fast

LAYOUTS = {"dense": {}, "sparse": {"topk": 3}, "quant": {"quantize": 3}}
TYPES = {"dense": DenseLayout, "sparse": SparseLayout, "quant": QuantLayout}


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> sk.CacheStore:
    """A dumped and sorted store of each layout: fake:40:10:8, 1 view, chunks of 16."""
    out = tmp_path_factory.mktemp(request.param) / "s.zarr"
    small_dump(out, dataset="fake:40:10:8", teacher="digits_mlp", views=1, chunk_samples=16,
               **LAYOUTS[request.param])  # fmt: skip
    sort_store(SortConfig(store=str(out), method="sort", progress=False, num_workers=1))
    store = sk.open_store(out)
    assert isinstance(store.layout, TYPES[request.param])
    return store


def _same(a: Any, b: Any, layout: Any) -> bool:
    """Two chunks of one layout, array by array (as the layout packs them)."""
    pairs = zip(layout.pack(a), layout.pack(b), strict=True)
    return all(np.array_equal(x, y) for x, y in pairs)


def test_the_record_chooses_the_layout(store: sk.CacheStore) -> None:
    layout = store.layout
    assert type(layout) is type(layout_of(store.meta))
    assert store.is_sparse == (layout.spec is not None)
    assert (layout.spec is None) == (layout.name == "dense")
    for kind in store.kinds():
        assert all(store.has_array(p) for p in layout.kind_arrays(store, kind))


def test_sorting_a_chunk_gives_the_stored_sort_chunk(store: sk.CacheStore) -> None:
    layout, labels = store.layout, store.labels
    for block in range(store.num_blocks):
        start, stop = store.block_bounds(block)
        raw = store.kind_array("raw").read_block(block, 0)
        out, rank, top = layout.sort_rows("sort", raw, labels[start:stop])
        assert _same(out, store.kind_array("sort").read_block(block, 0), layout)
        assert rank.shape == top.shape == (stop - start,)
    assert layout.sorted_chunks(store, "sort").all()


@pytest.mark.parametrize("stream", [False, True])
def test_rows_reach_the_losses_through_one_type(store: sk.CacheStore, stream: bool) -> None:
    """Whole-view and streamed rows of either layout train every distillation loss, and both
    sources give the same loss."""
    n = store.num_samples
    idx = torch.arange(n)
    y = torch.from_numpy(store.labels)
    student = torch.randn(n, store.num_classes, generator=torch.Generator().manual_seed(0))
    source = store_soft_labels(store, "sort", stream=stream)
    source.begin_epoch(0, idx, None)
    rows = source.rows(Batch(torch.empty(0), y, idx))
    source.close()
    for name in ("kd", "dkd", "lskd", "ctkd"):
        loss = make_loss(name)
        module = loss.make_temperature_module()
        total, parts = compute_loss(loss, student, rows, y, epoch=1, temperature_module=module)
        assert torch.isfinite(total) and set(parts) == {"ce", "kd"}
        whole = store_soft_labels(store, "sort")
        whole.begin_epoch(0, idx, None)
        other = whole.rows(Batch(torch.empty(0), y, idx))
        whole.close()
        again, _ = compute_loss(loss, student, other, y, epoch=1, temperature_module=module)
        assert torch.equal(total, again)


def test_a_view_is_measured_in_the_layouts_bytes(store: sk.CacheStore) -> None:
    per_row = store.layout.row_bytes(store.meta)
    if store.layout.spec is None:
        assert per_row == store.num_classes * np.dtype(store.meta.dtype).itemsize
    else:
        assert per_row == store.layout.spec.bytes_per_row
    plan = plan_soft_labels("auto", store, batch_size=8, world=1)
    assert plan.mode == "view"  # 40 rows are far below the threshold, in either layout


def test_dense_logits_refuse_to_be_taken_for_the_other_layout(store: sk.CacheStore) -> None:
    wrong = store.logits if store.layout.spec is not None else store.sparse_logits
    with pytest.raises(LogitsKindError, match="holds"):
        wrong("raw")
