"""A store's keys: list them with their sizes, read many at once (local, zip or remote)."""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zarr.abc.store import Store

from sortkd_cache.store._backend import Location, fs_store, remote_error
from sortkd_cache.store._zarr_compat import default_buffer_prototype, run_sync
from sortkd_cache.store._zipcheck import ZipMemberError

__all__ = ["list_keys", "read_keys", "read_keys_or_damage"]


def list_keys(store: Store, loc: Location) -> dict[str, int] | None:
    """Every key of a store with its size in bytes, sorted by key.

    None where the backend cannot list (http(s) directories: keys are then derived from the
    metadata). Directory entries are left out.
    """
    if loc.kind == "remote" and not loc.is_zip and not loc.scheme_info.lists:
        return None
    if loc.kind == "dir":
        root = Path(loc.path)
        files = {
            p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()
        }
        return dict(sorted(files.items()))
    if loc.kind == "zip":
        with zipfile.ZipFile(loc.path) as zf:
            return dict(sorted((i.filename, i.file_size) for i in zf.infolist() if not i.is_dir()))
    try:
        found = run_sync(_listed(store))
    except FileNotFoundError:
        return {}
    except Exception as exc:
        raise remote_error(loc, exc) from None
    return dict(sorted(found.items()))


async def _listed(store: Store) -> dict[str, int]:
    """Keys and sizes: one recursive listing of an fsspec store, else zarr's ``list()``."""
    try:
        inner = fs_store(store)
    except TypeError:
        keys = [key async for key in store.list()]
        sizes = await asyncio.gather(*(store.getsize(k) for k in keys))
        return {k: int(n) for k, n in zip(keys, sizes, strict=True)}
    fs, root_path = inner.fs, inner.path.rstrip("/")
    found: dict[str, dict[str, Any]] = await fs._find(root_path, detail=True)
    out = {}
    for name, info in found.items():
        if info.get("type") == "directory":
            continue
        key = name[len(root_path) :].lstrip("/") if root_path else name.lstrip("/")
        out[key] = int(info.get("size") or 0)
    return out


async def _gather_keys(
    store: Store, keys: Sequence[str], concurrency: int
) -> list[bytes | BaseException | None]:
    proto = default_buffer_prototype()
    sem = asyncio.Semaphore(concurrency)

    async def one(key: str) -> bytes | None:
        async with sem:
            value = await store.get(key, proto)
        return None if value is None else bytes(value.to_bytes())

    return await asyncio.gather(*(one(k) for k in keys), return_exceptions=True)


def read_keys_or_damage(
    store: Store, loc: Location, keys: Sequence[str], concurrency: int = 16
) -> list[bytes | ZipMemberError | None]:
    """The raw bytes of ``keys`` (None for a missing key), fetched concurrently; a damaged
    zip member is returned as its :class:`ZipMemberError` (what ``verify`` reports)."""
    results = run_sync(_gather_keys(store, keys, concurrency))
    out: list[bytes | ZipMemberError | None] = []
    for res in results:
        if isinstance(res, BaseException) and not isinstance(res, ZipMemberError):
            if not loc.is_local:
                raise remote_error(loc, res) from None
            raise res
        out.append(res)
    return out


def read_keys(
    store: Store, loc: Location, keys: Sequence[str], concurrency: int = 16
) -> list[bytes | None]:
    """The raw bytes of ``keys`` (None for a missing key), fetched concurrently; a damaged
    zip member raises its :class:`ZipMemberError`."""
    out: list[bytes | None] = []
    for res in read_keys_or_damage(store, loc, keys, concurrency):
        if isinstance(res, ZipMemberError):
            raise res
        out.append(res)
    return out
