"""Every zarr name that is not in zarr's public API, imported in this one module.

zarr-python 3 keeps some of what a store implementation needs under ``zarr.core`` (its
event-loop runner, the node metadata classes), which may move in any minor release. The rest
of the package imports these names from here, so a zarr upgrade that moves one is a change
to this file alone (``tests/test_structure.py`` refuses a ``zarr.core`` import anywhere
else). Names zarr does export publicly (``zarr.buffer``, ``zarr.abc.buffer``) are taken from
there.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from zarr.abc.buffer import Buffer, BufferPrototype
from zarr.buffer import default_buffer_prototype
from zarr.core.group import GroupMetadata
from zarr.core.metadata import ArrayV2Metadata, ArrayV3Metadata
from zarr.core.sync import sync

__all__ = [
    "ArrayV2Metadata",
    "ArrayV3Metadata",
    "Buffer",
    "BufferPrototype",
    "GroupMetadata",
    "default_buffer_prototype",
    "run_sync",
]

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on zarr's event loop (where zarr's stores and fsspec's async
    filesystems live) and return its result."""
    result: T = sync(coro)
    return result
