"""Streamed soft labels: an epoch order that keeps chunk locality, and a chunk reader whose
memory is bounded by the shuffle window instead of the number of samples."""

from ._order import StreamLayout, auto_lanes, streamed_order
from ._reader import ChunkWindowReader

__all__ = ["ChunkWindowReader", "StreamLayout", "auto_lanes", "streamed_order"]
