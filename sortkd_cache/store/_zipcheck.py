"""Zip members that fail their own CRC-32 (or do not inflate) are damaged chunks.

A flipped byte inside a zip member makes :mod:`zipfile` raise ``BadZipFile`` when the member
is read. Every zip store (local, or remote through fsspec) is wrapped so that such a read
raises :class:`ZipMemberError`, a :class:`~sortkd_cache.errors.CorruptChunkError` naming the
member: ``train`` and ``copy`` stop with exit code 2 and that one line, and ``verify`` lists
the member as a ``[checksum]`` problem in its report.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import AsyncGenerator, Iterable

from zarr.abc.store import ByteRequest, Store
from zarr.storage import WrapperStore

from sortkd_cache.errors import CorruptChunkError
from sortkd_cache.store._zarr_compat import Buffer, BufferPrototype

__all__ = ["ZipMemberError", "member_checked_store"]

#: What reading a damaged member raises: a bad CRC-32 or header, a truncated deflate stream.
DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError)


class ZipMemberError(CorruptChunkError):
    """A zip member that fails its CRC-32 or cannot be inflated; ``key`` names it."""

    def __init__(self, where: str, key: str, reason: str) -> None:
        self.where, self.key, self.reason = where, key, reason
        super().__init__(
            f"zip member '{key}' of '{where}' is damaged ({reason}); "
            f"run `sortkd-cache verify {where}`"
        )


def _reason(exc: BaseException) -> str:
    text = (str(exc).splitlines() or [""])[0]
    if "CRC" in text:
        return "failed its CRC-32 checksum"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class MemberCheckedStore(WrapperStore[Store]):
    """A read-only zip store whose damaged members raise :class:`ZipMemberError`."""

    def __init__(self, store: Store, where: str) -> None:
        super().__init__(store)
        self.where = where

    def _with_store(self, store: Store) -> MemberCheckedStore:
        return type(self)(store, self.where)

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        try:
            value: Buffer | None = await self._store.get(key, prototype, byte_range)
        except DAMAGE as exc:
            raise ZipMemberError(self.where, key, _reason(exc)) from None
        return value

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        return [await self.get(key, prototype, rng) for key, rng in key_ranges]

    async def _get_many(
        self, requests: Iterable[tuple[str, BufferPrototype, ByteRequest | None]]
    ) -> AsyncGenerator[tuple[str, Buffer | None], None]:
        for key, prototype, byte_range in requests:
            yield key, await self.get(key, prototype, byte_range)


def member_checked_store(inner: Store, where: str) -> MemberCheckedStore:
    """Wrap a read-only zip store: a damaged member raises :class:`ZipMemberError`."""
    return MemberCheckedStore(inner, where)
