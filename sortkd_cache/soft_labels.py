"""Where a batch's soft labels come from: one small interface, several sources.

A :class:`SoftLabels` source is told when an epoch starts (the stored view it trains on, this
rank's sample order for the epoch, and the next epoch's view as a prefetch hint) and then
gives the soft labels of each batch, in that order. :class:`~sortkd_cache.batches.EpochBatches`
calls it for every batch it yields, in your loop and in the ``train`` stage alike.

Sources here: :class:`ViewLogits` (a dense kind of a store, one whole view at a time, each
chunk read once, the next view read in a background thread) and, for a sparse (top-K) store,
:class:`~sortkd_cache.sparse.SparseViewSource` (chosen by :func:`store_soft_labels`). The
``train`` stage adds an online teacher (``--online-teacher``). A streamed source (chunk
windows, for stores whose views do not fit in memory) implements the same three methods.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, NamedTuple, Protocol, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

    from sortkd_cache.losses import SparseTeacher
    from sortkd_cache.store import CacheStore

T = TypeVar("T")

__all__ = [
    "Batch",
    "Prefetcher",
    "SoftLabels",
    "ViewLogits",
    "ViewPrefetcher",
    "read_view_logits",
    "store_soft_labels",
]


class Batch(NamedTuple):
    """One training batch, on the training device."""

    x: torch.Tensor  #: normalised replayed views, float32 [B, C, h, w]
    y: torch.Tensor  #: labels, int64 [B]
    idx: torch.Tensor  #: sample indices into the store / dataset, int64 [B]
    #: the teacher's logits [B, C] (a SparseTeacher from a sparse store); None without a source
    soft: torch.Tensor | SparseTeacher | None = None


class SoftLabels(Protocol):
    """The soft labels of the batches of an epoch (see the module docstring)."""

    def begin_epoch(self, view: int, local_order: torch.Tensor, next_view: int | None) -> None:
        """An epoch on stored ``view`` starts; this rank visits ``local_order`` (sample
        indices, in order). ``next_view`` (None at the last epoch) may be read ahead."""

    def rows(self, batch: Batch) -> torch.Tensor | SparseTeacher:
        """The soft labels of ``batch.idx`` (the next samples of the order), on the batch's
        device; ``batch.x`` and ``batch.y`` are there for sources that compute them."""
        ...

    def close(self) -> None:
        """Release threads, readers and memory."""


def store_soft_labels(
    store: CacheStore, kind: str, device: torch.device | str = "cpu"
) -> SoftLabels:
    """The source for a store's ``kind``: :class:`ViewLogits` (dense), or
    :class:`~sortkd_cache.sparse.SparseViewSource` (sparse top-K; batches are SparseTeachers,
    for :func:`~sortkd_cache.losses.compute_loss`)."""
    if store.is_sparse:
        from sortkd_cache.sparse import SparseViewSource

        source: SoftLabels = SparseViewSource(store, kind, device)
        return source
    return ViewLogits(store, kind, device)


def read_view_logits(store: CacheStore, kind: str, view: int) -> np.ndarray:
    """All samples' logits of one view, [N, C], read chunk by chunk (each chunk once)."""
    arr = store.logits(kind)
    out = np.empty((store.num_samples, store.num_classes), dtype=arr.dtype)
    for block in range(store.num_blocks):
        start, stop = store.block_bounds(block)
        out[start:stop] = arr.read_block(block, view)
    return out


class Prefetcher(Generic[T]):
    """Loads views in background threads (``load(view)``, read ahead by ``prefetch``);
    ``take(view)`` waits for one and returns it, re-raising what its load raised."""

    def __init__(self, load: Callable[[int], T]) -> None:
        self._load_view = load
        self._cache: dict[int, T] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._errors: dict[int, BaseException] = {}

    def _load(self, view: int) -> None:
        try:
            self._cache[view] = self._load_view(view)
        except BaseException as exc:  # re-raised in take()
            self._errors[view] = exc

    def prefetch(self, view: int) -> None:
        if view in self._cache or view in self._threads:
            return
        th = threading.Thread(target=self._load, args=(view,), daemon=True)
        self._threads[view] = th
        th.start()

    def take(self, view: int) -> T:
        self.prefetch(view)
        thread = self._threads.pop(view, None)
        if thread is not None:
            thread.join()
        if view in self._errors:
            raise self._errors.pop(view)
        return self._cache.pop(view)

    def close(self) -> None:
        for thread in self._threads.values():
            thread.join()
        self._threads.clear()
        self._cache.clear()
        self._errors.clear()


class ViewPrefetcher(Prefetcher["torch.Tensor"]):
    """Reads a view's soft logits in a background thread; ``get(view)`` returns them on device."""

    def __init__(self, read: Callable[[int], np.ndarray], device: torch.device) -> None:
        super().__init__(self._host)
        self._read, self._device = read, device

    def _host(self, view: int) -> torch.Tensor:
        import torch

        t = torch.from_numpy(self._read(view))
        return t.pin_memory() if self._device.type == "cuda" else t

    def get(self, view: int) -> torch.Tensor:
        return self.take(view).to(self._device, non_blocking=True)


class ViewLogits:
    """A dense logits kind of a store, one whole view per epoch ([N, C] on the device)."""

    def __init__(self, store: CacheStore, kind: str, device: torch.device | str = "cpu") -> None:
        import torch

        store.logits(kind)  # refuse a missing or incomplete kind now
        self.store, self.kind = store, kind
        self._fetch = ViewPrefetcher(
            lambda v: read_view_logits(store, kind, v), torch.device(device)
        )
        self._view: int | None = None
        self._current: torch.Tensor | None = None

    def begin_epoch(self, view: int, local_order: torch.Tensor, next_view: int | None) -> None:
        if view != self._view or self._current is None:
            self._current, self._view = self._fetch.get(view), view
        if next_view is not None and next_view != view:
            self._fetch.prefetch(next_view)

    def rows(self, batch: Batch) -> torch.Tensor:
        if self._current is None:
            from sortkd_cache.errors import ConfigError

            raise ConfigError("ViewLogits.rows() before begin_epoch()")
        return self._current[batch.idx.to(self._current.device)]

    def close(self) -> None:
        self._fetch.close()
        self._current, self._view = None, None
