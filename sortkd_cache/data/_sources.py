"""Which source gives a store's soft labels: whole views or streamed chunks, dense or sparse,
and ``--topk K`` on a dense kind (:class:`TopKRows`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from sortkd_cache.data._dense import ViewLogits
from sortkd_cache.data._sparse import SparseViewSource, online_sparse_teacher
from sortkd_cache.data._streamed import StreamedLogits
from sortkd_cache.errors import ConfigError
from sortkd_cache.store import DenseLayout, LogitsLayout, SparseLayout

if TYPE_CHECKING:
    from sortkd_cache.data._batch import Batch, SoftLabels
    from sortkd_cache.losses import SparseTeacher
    from sortkd_cache.sparse import SparseSpec
    from sortkd_cache.store import CacheStore

__all__ = ["TopKRows", "store_soft_labels"]

#: the whole-view source of each logits layout
_WHOLE_VIEWS: dict[type[LogitsLayout], Callable[[CacheStore, str, torch.device | str], SoftLabels]]
_WHOLE_VIEWS = {DenseLayout: ViewLogits, SparseLayout: SparseViewSource}


def store_soft_labels(
    store: CacheStore,
    kind: str,
    device: torch.device | str = "cpu",
    *,
    stream: bool = False,
) -> SoftLabels:
    """The source for a store's ``kind``: :class:`~sortkd_cache.data.ViewLogits` (dense) or
    :class:`~sortkd_cache.data.SparseViewSource` (sparse top-K; batches are SparseTeachers,
    for :func:`~sortkd_cache.losses.compute_loss`), one whole view per epoch; with
    ``stream``, :class:`~sortkd_cache.data.StreamedLogits` (either layout, chunk by chunk)."""
    if stream:
        return StreamedLogits(store, kind, device)
    return _WHOLE_VIEWS[type(store.layout)](store, kind, device)


class TopKRows:
    """A dense source whose batches are truncated to sparse rows of ``spec`` on the fly, as
    ``copy --topk K`` truncates them (the same function, format and recorded temperatures),
    so a run equals one from that copy."""

    def __init__(self, dense: SoftLabels, spec: SparseSpec) -> None:
        self.dense, self.spec = dense, spec

    def begin_epoch(self, view: int, local_order: torch.Tensor, next_view: int | None) -> None:
        self.dense.begin_epoch(view, local_order, next_view)

    def rows(self, batch: Batch) -> SparseTeacher:
        z = self.dense.rows(batch)
        if not isinstance(z, torch.Tensor):
            raise ConfigError("--topk truncates dense rows; this source is already sparse")
        # the stored dtype's values, bit for bit: compress() is what copy --topk runs on them
        return online_sparse_teacher(self.spec, z, batch.y, "raw")

    def close(self) -> None:
        self.dense.close()
