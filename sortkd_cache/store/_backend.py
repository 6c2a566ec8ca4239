"""Where a store lives, opened: a local directory, a ``.zip`` file, a URL of a registered
scheme (:mod:`._schemes`: s3://, gs://, http(s)://, memory://, a plugin's), or a zarr ``Store``
object given by the caller.

This module maps a location to a zarr ``Store``; what is specific to one URL scheme (its
opener, storage options, error mapping, writability) is the scheme's, in the registry.

* Remote stores opened read-only keep the chunks they read in an in-process LRU cache
  (``SORTKD_REMOTE_CACHE_MB``, default 1024; 0 disables), so repeated epochs over the same
  views do not download them again.
* Every remote open first fetches the root ``zarr.json`` once, so an unknown scheme, an
  unreachable endpoint, missing credentials or a path that holds no store fail right away
  with one clear :class:`RemoteStoreError` / :class:`StoreNotFoundError` line.
* A store object is used as given (mode ``"r"`` opens a read-only view of it); a read-only
  one cannot be written.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from typing import Any
from urllib.parse import urlsplit

import fsspec
from zarr.abc.store import Store
from zarr.storage import LocalStore, ZipStore

from sortkd_cache._net import remote_timeout
from sortkd_cache.errors import (
    RemoteStoreError,
    SortKDError,
    StoreNotFoundError,
    StoreReadOnlyError,
)
from sortkd_cache.store._fsspec import bucket_missing, fs_store
from sortkd_cache.store._fsspec import remote_filesystem as _fsspec_filesystem
from sortkd_cache.store._readcache import cache_bytes, read_cache_store
from sortkd_cache.store._schemes import SCHEMES, Location, Mode, Scheme, parse_location
from sortkd_cache.store._timeouts import bounded, no_answer
from sortkd_cache.store._zarr_compat import default_buffer_prototype, run_sync
from sortkd_cache.store._zipcheck import member_checked_store

__all__ = [
    "ROOT_META",
    "SCHEMES",
    "Location",
    "Mode",
    "Scheme",
    "fs_store",
    "open_backend",
    "parse_location",
    "remote_error",
    "remote_filesystem",
    "run_sync",
    "storage_options_for",
]

ROOT_META = "zarr.json"


def storage_options_for(loc: Location, storage_options: dict[str, Any] | None) -> dict[str, Any]:
    """The storage options of a URL location: the given ones, completed by its scheme (from
    the environment); nothing for a local or object location."""
    if loc.kind != "remote":
        return dict(storage_options or {})
    return loc.scheme_info.options(loc, dict(storage_options or {}))


def remote_error(
    loc: Location, exc: BaseException, opts: dict[str, Any] | None = None
) -> Exception:
    """One clear error for a failed access, as the location's scheme words it."""
    if isinstance(exc, SortKDError):
        return exc
    if loc.kind != "remote":
        first = (str(exc).splitlines() or [""])[0].strip() or type(exc).__name__
        return RemoteStoreError(f"cannot access '{loc.raw}': {type(exc).__name__}: {first}")
    return loc.scheme_info.error(loc, exc, opts or {})


def remote_filesystem(
    loc: Location, opts: dict[str, Any], *, asynchronous: bool = False
) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem of a URL location of an fsspec scheme, and the path inside it."""
    if loc.kind != "remote" or not loc.scheme_info.fsspec:
        raise RemoteStoreError(f"'{loc.raw}' is not at a URL of an fsspec filesystem")
    return _fsspec_filesystem(loc, opts, asynchronous=asynchronous)


def _probe(loc: Location, store: Store, mode: Mode, opts: dict[str, Any]) -> None:
    """Fetch the root zarr.json once: fail early, clearly, on a bad endpoint or location
    (within ``SORTKD_REMOTE_TIMEOUT``)."""
    timeout = remote_timeout()
    try:
        value = run_sync(bounded(store.get(ROOT_META, default_buffer_prototype()), timeout))
    except TimeoutError:
        raise remote_error(loc, no_answer(timeout), opts) from None
    except FileNotFoundError as exc:  # a store that checks its root on open (zarr's LocalStore)
        if mode != "r":
            raise remote_error(loc, exc, opts) from None
        raise StoreNotFoundError(f"no store at '{loc.raw}' (not found)") from None
    except Exception as exc:
        raise remote_error(loc, exc, opts) from None
    buckets = loc.kind == "remote" and loc.scheme_info.buckets
    if value is None and buckets and bucket_missing(store):
        bucket = urlsplit(loc.path).netloc
        if mode == "r":
            raise StoreNotFoundError(f"no store at '{loc.raw}': bucket '{bucket}' does not exist")
        raise RemoteStoreError(f"bucket '{bucket}' of '{loc.raw}' does not exist; create it first")
    if value is None and mode == "r":
        raise StoreNotFoundError(f"no store at '{loc.raw}' (no {ROOT_META} there)")


def _open_local_zip(loc: Location) -> Store:
    if not os.path.isfile(loc.path):
        raise StoreNotFoundError(f"no store at '{loc.raw}' (file not found)")
    if not zipfile.is_zipfile(loc.path):
        raise StoreNotFoundError(f"'{loc.raw}' is not a zip file")
    with zipfile.ZipFile(loc.path) as zf:
        if ROOT_META not in zf.namelist():
            raise StoreNotFoundError(f"'{loc.raw}' is a zip file but not a store (no {ROOT_META})")
    return member_checked_store(ZipStore(loc.path, mode="r", read_only=True), loc.raw)


def _open_local(loc: Location, read_only: bool) -> Store:
    if loc.kind == "zip":
        if not read_only:
            raise StoreReadOnlyError(
                f"zip store '{loc.raw}' is read-only; write a directory store, then "
                f"`sortkd-cache copy DIR {loc.raw}`"
            )
        return _open_local_zip(loc)
    if read_only:
        if os.path.isfile(loc.path):
            raise StoreNotFoundError(f"'{loc.raw}' is a file, not a store directory or .zip")
        if not os.path.isdir(loc.path):
            raise StoreNotFoundError(f"no store at '{loc.raw}' (directory not found)")
        if not os.path.isfile(os.path.join(loc.path, ROOT_META)):
            raise StoreNotFoundError(f"'{loc.raw}' is not a store (no {ROOT_META} in it)")
    return LocalStore(loc.path, read_only=read_only)


def _open_object(loc: Location, mode: Mode) -> Store:
    """The store object itself; mode ``"r"`` gets a read-only view of a writable one."""
    store = loc.store
    if store is None:  # pragma: no cover - parse_location sets it
        raise StoreNotFoundError(f"no store object at '{loc.raw}'")
    if mode != "r" and store.read_only:
        raise StoreReadOnlyError(f"store object {loc.raw} is read-only")
    if mode == "r" and not store.read_only:
        # a store without read-only views stays as it is: CacheStore refuses writes in mode "r"
        with contextlib.suppress(NotImplementedError):
            store = store.with_read_only(True)
    return store


def _open_url(loc: Location, mode: Mode, storage_options: dict[str, Any] | None) -> Store:
    scheme = loc.scheme_info
    if mode != "r" and not scheme.writable:
        raise StoreReadOnlyError(
            f"'{loc.raw}' is read-only ({loc.scheme}:// stores cannot be written)"
        )
    if loc.is_zip and not scheme.fsspec:
        raise RemoteStoreError(f"'{loc.raw}': zip files are read at fsspec URLs only")
    opts = storage_options_for(loc, storage_options)
    try:
        store = scheme.open(loc, mode, opts)
    except SortKDError:
        raise
    except Exception as exc:
        raise remote_error(loc, exc, opts) from None
    max_bytes = cache_bytes()
    if mode == "r" and max_bytes > 0:
        store = read_cache_store(store, max_bytes)
    _probe(loc, store, mode, opts)
    return store


def open_backend(loc: Location, mode: Mode, storage_options: dict[str, Any] | None = None) -> Store:
    """A zarr store object for ``loc``. ``mode='r'`` opens read-only."""
    if loc.kind == "object":
        store = _open_object(loc, mode)
        _probe(loc, store, mode, {})
        return store
    if loc.kind != "remote":
        return _open_local(loc, mode == "r")
    return _open_url(loc, mode, storage_options)
