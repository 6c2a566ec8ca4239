"""Streamed soft labels as a :class:`~sortkd_cache.data.SoftLabels` source.

    import sortkd_cache as sk
    from sortkd_cache.data import StreamLayout, StreamedLogits, streamed_order

    store = sk.open_store("in1k.zarr")
    layout = StreamLayout(store.num_samples, store.chunk_samples, lanes=8, window=2)
    batches = sk.EpochBatches.from_store(
        store, kind=None, batch_size=256,
        order=lambda n, b, seed, epoch: torch.from_numpy(streamed_order(layout, b, seed, epoch)),
    )
    batches.soft = StreamedLogits(store, "sort")

Each epoch, :meth:`StreamedLogits.begin_epoch` opens a
:class:`~sortkd_cache.data.ChunkWindowReader` over this rank's part of the epoch's order;
:meth:`~StreamedLogits.rows` then takes each batch's rows from it (on the batch's device).
Only the chunks that order touches are read, each once, a window at a time.

Every layout streams the same way: a chunk is what its layout packs (a sparse kind's ``ids``,
``values`` and ``stats``, ids kept in the store's narrow integer type while resident), and each
batch is what the layout's teacher-rows factory makes of the batch's rows (for top-K, a
:class:`~sortkd_cache.losses.SparseTeacher` with the same rows as the whole-view
:class:`~sortkd_cache.data.SparseViewSource` gives).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from sortkd_cache.data._layouts import TeacherRowsOut, training_of
from sortkd_cache.data._reader import ChunkWindowReader, Rows
from sortkd_cache.errors import ConfigError

if TYPE_CHECKING:
    from sortkd_cache.data._batch import Batch
    from sortkd_cache.store import CacheStore

__all__ = ["StreamedLogits"]


class StreamedLogits:
    """A logits kind of a store (any layout), read chunk by chunk in each epoch's order."""

    def __init__(
        self,
        store: CacheStore,
        kind: str,
        device: torch.device | str = "cpu",
        prefetch: int = 4,
    ) -> None:
        self._array = store.kind_array(kind)  # refuse a missing or incomplete kind now
        self._chunk = int(self._array.chunks[0])
        self._layout = store.layout
        self._training = training_of(self._layout)
        self.store, self.kind = store, kind
        self._device, self._prefetch = torch.device(device), prefetch
        self._reader: ChunkWindowReader | None = None
        #: the most soft-label bytes resident at once, over every epoch so far
        self.peak_bytes = 0
        self._epoch_chunks: list[int] = []
        self._epoch_peak = 0

    def begin_epoch(self, view: int, local_order: torch.Tensor, next_view: int | None) -> None:
        """Start reading ``view`` for this rank's ``local_order`` (closing the last epoch).

        ``next_view`` is not read ahead: the reader starts on the first chunks right away."""
        self.close()
        arr, layout = self._array, self._layout

        def read(block: int) -> Rows:
            return layout.pack(arr.read_block(block, view))

        order = local_order.detach().cpu().numpy()
        self._reader = ChunkWindowReader(read, order, self._chunk, self._prefetch)

    def rows(self, batch: Batch) -> TeacherRowsOut:
        """Soft labels of ``batch.idx`` (the next samples of the epoch's order), as the
        layout's teacher-rows factory makes them (dense rows ``[B, C]``, top-K rows...)."""
        if self._reader is None:
            raise ConfigError("StreamedLogits.rows() before begin_epoch()")
        got = self._reader.take(batch.idx.detach().cpu().numpy())
        self.peak_bytes = max(self.peak_bytes, self._reader.peak_bytes)
        packed = [self._to_device(torch.from_numpy(a)) for a in got]
        return self._training.teacher_rows(self._layout, packed)

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        if self._device.type == "cuda":
            return t.pin_memory().to(self._device, non_blocking=True)
        return t.to(self._device)

    def epoch_stats(self) -> dict[str, Any]:
        """What the current (or last) epoch read: ``chunks``, the sorted chunk indices read
        so far (each chunk is read once), and ``peak_bytes``, the most soft-label bytes
        resident at once."""
        if self._reader is not None:
            self._epoch_chunks = sorted(self._reader.blocks_read)
            self._epoch_peak = self._reader.peak_bytes
        return {"chunks": list(self._epoch_chunks), "peak_bytes": int(self._epoch_peak)}

    def close(self) -> None:
        if self._reader is not None:
            self.epoch_stats()  # keep the closed epoch's figures
            self.peak_bytes = max(self.peak_bytes, self._reader.peak_bytes)
            self._reader.close()
            self._reader = None
