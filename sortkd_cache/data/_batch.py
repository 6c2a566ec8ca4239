"""What a training step gets: one :class:`Batch`, and the :class:`SoftLabels` interface.

A :class:`SoftLabels` source is told when an epoch starts (the stored view it trains on, this
rank's sample order for the epoch, and the next epoch's view as a prefetch hint) and then
gives the soft labels of each batch, in that order. :class:`~sortkd_cache.data.EpochBatches`
calls it for every batch it yields, in your loop and in the ``train`` stage alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    import torch

    from sortkd_cache.losses import TeacherRows

__all__ = ["Batch", "SoftLabels"]


class Batch(NamedTuple):
    """One training batch, on the training device."""

    x: torch.Tensor  #: normalised replayed views, float32 [B, C, h, w]
    y: torch.Tensor  #: labels, int64 [B]
    idx: torch.Tensor  #: sample indices into the store / dataset, int64 [B]
    #: the teacher's logits [B, C] (a layout's rows from a sparse or sampled store); None
    #: without a source
    soft: torch.Tensor | TeacherRows | None = None


class SoftLabels(Protocol):
    """The soft labels of the batches of an epoch (see the module docstring)."""

    def begin_epoch(self, view: int, local_order: torch.Tensor, next_view: int | None) -> None:
        """An epoch on stored ``view`` starts; this rank visits ``local_order`` (sample
        indices, in order). ``next_view`` (None at the last epoch) may be read ahead."""

    def rows(self, batch: Batch) -> torch.Tensor | TeacherRows:
        """The soft labels of ``batch.idx`` (the next samples of the order), on the batch's
        device; ``batch.x`` and ``batch.y`` are there for sources that compute them."""
        ...

    def close(self) -> None:
        """Release threads, readers and memory."""
