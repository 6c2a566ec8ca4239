"""The in-process LRU cache of whole values that read-only remote stores go through.

``SORTKD_REMOTE_CACHE_MB`` (default 1024; 0 disables) bounds it, so repeated epochs over the
same views do not download their chunks again.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import AsyncGenerator, Iterable

from zarr.abc.store import ByteRequest, Store
from zarr.storage import WrapperStore

from sortkd_cache.errors import RemoteStoreError
from sortkd_cache.store._zarr_compat import Buffer, BufferPrototype

__all__ = ["CACHE_ENV", "cache_bytes", "read_cache_store"]

CACHE_ENV = "SORTKD_REMOTE_CACHE_MB"


def cache_bytes() -> int:
    """The cache's size in bytes, from ``SORTKD_REMOTE_CACHE_MB`` (MiB; default 1024)."""
    raw = os.environ.get(CACHE_ENV, "1024")
    try:
        return max(0, int(float(raw) * (1 << 20)))
    except ValueError:
        raise RemoteStoreError(f"{CACHE_ENV}='{raw}' is not a number of MiB") from None


class _LRU:
    """Whole values by key, the least recently used dropped beyond ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._values: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0

    def get(self, key: str) -> bytes | None:
        hit = self._values.get(key)
        if hit is not None:
            self._values.move_to_end(key)
        return hit

    def put(self, key: str, data: bytes) -> None:
        if len(data) > self.max_bytes or key in self._values:
            return
        self._values[key] = data
        self._size += len(data)
        while self._size > self.max_bytes:
            _, old = self._values.popitem(last=False)
            self._size -= len(old)


class ReadCacheStore(WrapperStore[Store]):
    """A read-only store whose whole values (chunks and metadata) go through an LRU cache."""

    def __init__(self, store: Store, max_bytes: int) -> None:
        super().__init__(store)
        self.max_bytes = max_bytes
        self._lru = _LRU(max_bytes)

    def _with_store(self, store: Store) -> ReadCacheStore:
        return type(self)(store, self.max_bytes)

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        hit = None if byte_range is not None else self._lru.get(key)
        if hit is not None:
            return prototype.buffer.from_bytes(hit)
        value: Buffer | None = await self._store.get(key, prototype, byte_range)
        if value is not None and byte_range is None:
            self._lru.put(key, value.to_bytes())
        return value

    async def _get_many(
        self, requests: Iterable[tuple[str, BufferPrototype, ByteRequest | None]]
    ) -> AsyncGenerator[tuple[str, Buffer | None], None]:
        for key, prototype, byte_range in requests:
            yield key, await self.get(key, prototype, byte_range)


def read_cache_store(inner: Store, max_bytes: int) -> ReadCacheStore:
    """Wrap a read-only store in an LRU cache of whole values (chunks and metadata)."""
    return ReadCacheStore(inner, max_bytes)
