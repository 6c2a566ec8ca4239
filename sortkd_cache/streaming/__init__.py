"""Streamed soft labels: an epoch order that keeps chunk locality, a chunk reader whose memory
is bounded by the shuffle window instead of the number of samples, and the
:class:`~sortkd_cache.soft_labels.SoftLabels` source built on them."""

from ._order import StreamLayout, auto_lanes, streamed_order
from ._reader import ChunkWindowReader
from ._source import StreamedLogits

__all__ = ["ChunkWindowReader", "StreamLayout", "StreamedLogits", "auto_lanes", "streamed_order"]
