"""From a store to training batches: views, epoch orders, soft-label sources, batches.

    import sortkd_cache as sk
    store = sk.open_store("digits.zarr")
    batches = sk.EpochBatches.from_store(store, kind="sort", batch_size=64, seed=0)
    for epoch in range(E):
        for b in batches.epoch(epoch):      # b.x images, b.y labels, b.soft teacher logits
            ...

The ``train`` stage runs exactly this path. Its pieces, each a small module here:

* views (:class:`StoredViews`, :class:`FreshViews`, :func:`view_for_epoch`) and the store's
  dataset (:func:`load_store_dataset`, :func:`check_fingerprint`);
* epoch orders (:func:`epoch_order`, the chunk-local :func:`streamed_order`) and each rank's
  part of one (:func:`shard_order`);
* soft-label sources (the :class:`SoftLabels` interface): whole views of a dense kind
  (:class:`ViewLogits`) or a sparse one (:class:`SparseViewSource`), or chunk windows of
  either (:class:`StreamedLogits` over a :class:`ChunkWindowReader`), chosen by
  :func:`store_soft_labels`, and by :func:`plan_soft_labels` for ``--soft-labels``;
* :class:`EpochBatches`, the batches of an epoch, and :class:`CachedViewDataset`, one sample
  at a time over the same path.
"""

from __future__ import annotations

from sortkd_cache.data._batch import Batch, SoftLabels
from sortkd_cache.data._batches import DATA_PATHS, BatchOptions, EpochBatches, choose_path
from sortkd_cache.data._cached import CachedViewDataset
from sortkd_cache.data._dense import ViewLogits, read_view_logits
from sortkd_cache.data._order import (
    StreamLayout,
    auto_lanes,
    epoch_order,
    shard_order,
    streamed_order,
)
from sortkd_cache.data._plan import (
    SOFT_LABEL_MODES,
    STREAM_THRESHOLD_BYTES,
    StreamPlan,
    plan_soft_labels,
    stream_stats,
    view_bytes,
)
from sortkd_cache.data._prefetch import Prefetcher, ViewPrefetcher
from sortkd_cache.data._quant import QuantViewSource, dequantize_tensor
from sortkd_cache.data._reader import ChunkWindowReader
from sortkd_cache.data._sources import QuantizeRows, SampleRows, TopKRows, store_soft_labels
from sortkd_cache.data._sparse import SparseViewSource, online_sparse_teacher, read_sparse_view
from sortkd_cache.data._streamed import StreamedLogits
from sortkd_cache.data._views import (
    FreshViews,
    StoredViews,
    Views,
    check_fingerprint,
    load_store_dataset,
    render,
    store_data_spec,
    view_for_epoch,
)

__all__ = [
    "DATA_PATHS",
    "SOFT_LABEL_MODES",
    "STREAM_THRESHOLD_BYTES",
    "Batch",
    "BatchOptions",
    "CachedViewDataset",
    "ChunkWindowReader",
    "EpochBatches",
    "FreshViews",
    "Prefetcher",
    "QuantViewSource",
    "QuantizeRows",
    "SampleRows",
    "dequantize_tensor",
    "SoftLabels",
    "SparseViewSource",
    "StoredViews",
    "StreamLayout",
    "StreamPlan",
    "StreamedLogits",
    "TopKRows",
    "ViewLogits",
    "ViewPrefetcher",
    "Views",
    "auto_lanes",
    "check_fingerprint",
    "choose_path",
    "epoch_order",
    "load_store_dataset",
    "store_data_spec",
    "online_sparse_teacher",
    "plan_soft_labels",
    "read_sparse_view",
    "read_view_logits",
    "render",
    "shard_order",
    "store_soft_labels",
    "stream_stats",
    "streamed_order",
    "view_bytes",
    "view_for_epoch",
]
