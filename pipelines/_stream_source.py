"""Streamed soft labels for the train stage: the choice, the epoch order and the source.

``--soft-labels view`` reads one whole view of soft labels per epoch (N x C values per rank,
plus the next view prefetched). ``--soft-labels stream`` orders the epoch with
:func:`~sortkd_cache.streaming.streamed_order` (chunks shuffled and dealt to lanes, samples
shuffled in windows of ``--stream-window`` chunks) and reads, on each rank, only the chunks of
its own part of that order, a window at a time (:class:`~sortkd_cache.streaming
.ChunkWindowReader`). ``auto`` (the default) streams once one view's soft labels exceed
``STREAM_THRESHOLD_BYTES`` (64 MiB: ImageNet-1k in float16 is 2.4 GiB per view), else reads
whole views. The resolved choice, lanes and window are recorded in ``config.json``.

The streamed order depends on (seed, epoch), the store's chunking, the lanes and the window
only, never on the number of ranks or workers, so ``--resume`` repeats it exactly; an online
teacher run with ``--soft-labels stream`` visits the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sortkd_cache.errors import ConfigError
from sortkd_cache.streaming import ChunkWindowReader, StreamLayout, auto_lanes, streamed_order

__all__ = [
    "SOFT_LABEL_MODES",
    "STREAM_THRESHOLD_BYTES",
    "StreamPlan",
    "StreamedSoftLabels",
    "plan_soft_labels",
    "view_bytes",
]

SOFT_LABEL_MODES = ("auto", "view", "stream")
STREAM_THRESHOLD_BYTES = 64 << 20


def view_bytes(store: Any, kind: str) -> int:
    """Bytes of one view's soft labels of ``kind`` (all samples)."""
    arr = store.logits(kind)
    per_row = int(np.prod(arr.shape[2:])) * int(np.dtype(arr.dtype).itemsize)
    return int(store.num_samples) * per_row


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

    def order(self, n: int, batch_size: int, seed: int, epoch: int) -> torch.Tensor | None:
        """The streamed global order of an epoch, or None for the whole-view order."""
        if self.layout is None:
            return None
        return torch.from_numpy(streamed_order(self.layout, batch_size, seed, epoch))


def plan_soft_labels(
    requested: str,
    store: Any | None,
    kind: str,
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
        mode = "stream" if view_bytes(store, kind) > STREAM_THRESHOLD_BYTES else "view"
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


class StreamedSoftLabels:
    """One rank's soft labels for streamed epochs: ``begin_epoch`` with the rank's order,
    then ``rows(idx)`` per batch, in that order."""

    def __init__(self, store: Any, kind: str, device: torch.device, prefetch: int = 4) -> None:
        self._store, self._kind, self._device, self._prefetch = store, kind, device, prefetch
        self._array = store.logits(kind)
        self._reader: ChunkWindowReader | None = None
        self.peak_bytes = 0

    def begin_epoch(self, view: int, local_order: torch.Tensor) -> None:
        """Start reading ``view`` for this rank's ``local_order`` (closing the last epoch)."""
        self.close()
        arr = self._array

        def read(block: int) -> np.ndarray:
            rows: np.ndarray = arr.read_block(block, view)
            return rows

        self._reader = ChunkWindowReader(
            read, local_order.cpu().numpy(), int(self._store.chunk_samples), self._prefetch
        )

    def rows(self, idx: torch.Tensor) -> torch.Tensor:
        """Soft labels of ``idx`` (the next samples of the epoch's order) on the device."""
        if self._reader is None:
            raise ConfigError("streamed soft labels: begin_epoch() was not called")
        t = torch.from_numpy(self._reader.take(idx.cpu().numpy()))
        self.peak_bytes = max(self.peak_bytes, self._reader.peak_bytes)
        if self._device.type == "cuda":
            return t.pin_memory().to(self._device, non_blocking=True)
        return t

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
