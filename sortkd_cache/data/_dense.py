"""A dense logits kind of a store as a :class:`~sortkd_cache.data.SoftLabels` source."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from sortkd_cache.data._prefetch import ViewPrefetcher
from sortkd_cache.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from sortkd_cache.data._batch import Batch
    from sortkd_cache.store import CacheStore

__all__ = ["ViewLogits", "read_view_logits"]


def read_view_logits(store: CacheStore, kind: str, view: int) -> np.ndarray:
    """All samples' logits of one view, [N, C], read chunk by chunk (each chunk once)."""
    arr = store.logits(kind)
    out = np.empty((store.num_samples, store.num_classes), dtype=arr.dtype)
    for block in range(store.num_blocks):
        start, stop = store.block_bounds(block)
        out[start:stop] = arr.read_block(block, view)
    return out


class ViewLogits:
    """A dense logits kind of a store, one whole view per epoch ([N, C] on the device), each
    chunk read once, the next view read in a background thread."""

    def __init__(self, store: CacheStore, kind: str, device: torch.device | str = "cpu") -> None:
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
            raise ConfigError("ViewLogits.rows() before begin_epoch()")
        return self._current[batch.idx.to(self._current.device)]

    def close(self) -> None:
        self._fetch.close()
        self._current, self._view = None, None
