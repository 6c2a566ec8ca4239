"""One whole view of a packed kind on the training device (the sampled and the quantized
layouts): :class:`PackedViewSource` reads a view's packed arrays chunk by chunk (each checked
as it loads), keeps them on the device, reads the next view in a background thread, and hands
each batch's rows to its layout's :meth:`~PackedViewSource.teacher`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sortkd_cache.data._prefetch import Prefetcher
from sortkd_cache.errors import ConfigError

if TYPE_CHECKING:
    from sortkd_cache.data._batch import Batch
    from sortkd_cache.losses import TeacherRows
    from sortkd_cache.store import CacheStore

__all__ = ["PackedViewSource"]

_Tensors = tuple[torch.Tensor, ...]


class _ViewReader(Prefetcher[_Tensors]):
    def __init__(
        self, store: CacheStore, kind: str, device: torch.device, index_first: bool = True
    ) -> None:
        super().__init__(self._host)
        self._store, self._kind, self._device = store, kind, device
        self._index_first = index_first

    def _host(self, view: int) -> _Tensors:
        data = self._store.kind_array(self._kind)
        parts = [
            self._store.layout.pack(data.read_block(b, view)) for b in range(self._store.num_blocks)
        ]
        arrays = [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]
        if self._index_first:  # class ids, as the losses index with them
            arrays[0] = arrays[0].astype(np.int64)
        out = tuple(torch.from_numpy(a) for a in arrays)
        if self._device.type == "cuda":
            out = tuple(t.pin_memory() for t in out)
        return out

    def get(self, view: int) -> _Tensors:
        return tuple(t.to(self._device, non_blocking=True) for t in self.take(view))


class PackedViewSource:
    """A :class:`~sortkd_cache.data.SoftLabels` source for a packed kind: one whole view per
    epoch on the device, the next read ahead; ``rows`` gives what :meth:`teacher` makes of a
    batch's packed rows."""

    #: whether the first packed array holds class ids (made int64 once, on the host)
    index_first = False

    def __init__(self, store: CacheStore, kind: str, device: torch.device | str = "cpu") -> None:
        store.kind_array(kind)  # refuse a missing or incomplete kind now
        self.spec: Any = store.layout.spec
        self._reader = _ViewReader(store, kind, torch.device(device), self.index_first)
        self._view: int | None = None
        self._current: _Tensors | None = None

    def begin_epoch(self, view: int, local_order: torch.Tensor, next_view: int | None) -> None:
        if view != self._view or self._current is None:
            self._current, self._view = self._reader.get(view), view
        if next_view is not None and next_view != view:
            self._reader.prefetch(next_view)

    def rows(self, batch: Batch) -> TeacherRows | torch.Tensor:
        if self._current is None:
            raise ConfigError(f"{type(self).__name__}.rows() before begin_epoch()")
        idx = batch.idx.to(self._current[0].device)
        return self.teacher([t.index_select(0, idx) for t in self._current])

    def teacher(self, packed: Sequence[torch.Tensor]) -> TeacherRows | torch.Tensor:
        """A batch's packed rows as the losses read them (the layout's rows, or dense logits)."""
        raise NotImplementedError

    def close(self) -> None:
        self._reader.close()
        self._current, self._view = None, None
