"""View or stream: which soft-label source a run uses, its epoch order, and its figures.

``--soft-labels view`` reads one whole view of soft labels per epoch (N x C values per rank,
plus the next view prefetched: :class:`~sortkd_cache.data.ViewLogits`).
``--soft-labels stream`` orders the epoch with :func:`~sortkd_cache.data.streamed_order`
(chunks shuffled and dealt to lanes, samples shuffled in windows of ``--stream-window``
chunks) and reads, on each rank, only the chunks of its own part of that order, a window at
a time (:class:`~sortkd_cache.data.StreamedLogits`). ``auto`` (the default) streams once
one view's soft labels exceed ``STREAM_THRESHOLD_BYTES`` (64 MiB: ImageNet-1k in float16 is
2.4 GiB per view), else reads whole views. A sparse (top-K) store is measured by its own
bytes per sample-view (ids, values and stats: 4K + 14 bytes for float16), and streams the
same way: its ids, values and stats chunk by chunk in the same order. The resolved choice,
lanes and window are recorded in ``config.json``.

The streamed order depends on (seed, epoch), the store's chunking, the lanes and the window
only, never on the number of ranks or workers, so ``--resume`` repeats it exactly; an online
teacher run with ``--soft-labels stream`` visits the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

from sortkd_cache.choices import SOFT_LABEL_MODES
from sortkd_cache.data._order import StreamLayout, auto_lanes, streamed_order
from sortkd_cache.errors import ConfigError

if TYPE_CHECKING:
    from sortkd_cache.data._batch import SoftLabels
    from sortkd_cache.store import CacheStore

__all__ = [
    "SOFT_LABEL_MODES",
    "STREAM_THRESHOLD_BYTES",
    "StreamPlan",
    "plan_soft_labels",
    "stream_stats",
    "view_bytes",
]

STREAM_THRESHOLD_BYTES = 64 << 20


def view_bytes(store: CacheStore) -> int:
    """Bytes of one view's soft labels (all samples, the store's dtype): N x C values of a
    dense store, N x (ids, values and stats) of a sparse one."""
    return int(store.num_samples) * int(store.layout.row_bytes(store.meta))


@dataclass(frozen=True)
class StreamPlan:
    """The resolved soft-label mode ("view" or "stream") and, when streaming, its layout."""

    mode: str
    layout: StreamLayout | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"soft_labels": self.mode}
        if self.layout is not None:
            out |= {"stream_lanes": self.layout.lanes, "stream_window": self.layout.window}
        return out

    def order(self, n: int, batch_size: int, seed: int, epoch: int) -> torch.Tensor:
        """The streamed global order of an epoch (an ``EpochBatches`` order function)."""
        if self.layout is None or n != self.layout.num_samples:
            raise ConfigError(f"no streamed order for {n} samples (soft labels: {self.mode})")
        return torch.from_numpy(streamed_order(self.layout, batch_size, seed, epoch))


def plan_soft_labels(
    requested: str,
    store: CacheStore | None,
    *,
    batch_size: int,
    world: int,
    lanes: int | None = None,
    window: int = 2,
) -> StreamPlan:
    """Resolve ``--soft-labels`` (see the module doc); refuses what cannot act."""
    if requested not in SOFT_LABEL_MODES:
        raise ConfigError(f"unknown --soft-labels '{requested}'; use {', '.join(SOFT_LABEL_MODES)}")
    if store is None:
        if requested == "stream":
            raise ConfigError("--soft-labels stream needs --cache STORE")
        return StreamPlan("view")
    mode = requested
    if mode == "auto":
        mode = "stream" if view_bytes(store) > STREAM_THRESHOLD_BYTES else "view"
    if mode == "view":
        return StreamPlan("view")
    layout = StreamLayout(
        num_samples=int(store.num_samples),
        chunk_samples=int(store.chunk_samples),
        lanes=lanes if lanes is not None else auto_lanes(batch_size),
        window=window,
    )
    layout.check_batch(batch_size, world)
    return StreamPlan("stream", layout)


def stream_stats(soft: SoftLabels | None, world: int) -> dict[str, Any]:
    """The epoch's streaming figures for its metrics row, per rank (rank order), or ``{}``
    when the soft labels are not streamed: ``stream_chunks``, the chunks each rank read
    (each once), and ``stream_peak_bytes``, each rank's most soft-label bytes resident at
    once. A collective under torch.distributed: every rank calls it."""
    source = getattr(soft, "dense", soft)  # train --topk wraps the store's source (TopKRows)
    stats = getattr(source, "epoch_stats", None)
    if stats is None:
        return {}
    mine: dict[str, Any] = stats()
    ranks = [mine]
    if world > 1:
        ranks = [{} for _ in range(world)]
        dist.all_gather_object(ranks, mine)
    return {
        "stream_chunks": [r["chunks"] for r in ranks],
        "stream_peak_bytes": [r["peak_bytes"] for r in ranks],
    }
