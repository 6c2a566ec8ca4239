"""Open an existing store, or create a new one (replacing only a store, with overwrite)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.abc.store import Store

from sortkd_cache.errors import (
    OutputError,
    StoreError,
    StoreExistsError,
    StoreNotFoundError,
    StoreReadOnlyError,
)
from sortkd_cache.locks import clear_except_lock
from sortkd_cache.outputs import check_replaceable
from sortkd_cache.store._backend import Location, Mode, open_backend, parse_location
from sortkd_cache.store._keys import list_keys
from sortkd_cache.store._layout import LABELS, PARAMS
from sortkd_cache.store._meta import StoreMeta
from sortkd_cache.store._output_kind import backend_is_store_output
from sortkd_cache.store._store import CacheStore

__all__ = ["StoreLike", "create_store", "open_store"]

#: Where a store is: a local path (directory or .zip), a URL of a registered scheme
#: (s3://, gs://, https://, memory://, a plugin's), or a zarr ``Store`` object.
StoreLike = str | os.PathLike[str] | Store


def open_store(
    location: StoreLike,
    mode: Mode = "r",
    *,
    storage_options: dict[str, Any] | None = None,
) -> CacheStore:
    """Open an existing store: a directory, a .zip, a URL (s3://, gs://, https://, memory://,
    or a scheme a plugin registers), or a zarr ``Store`` object (``zarr.storage.MemoryStore``,
    ``LocalStore``, ...; mode ``"r"`` reads it through a read-only view)."""
    loc = parse_location(location)
    backend = open_backend(loc, mode, storage_options)
    try:
        group = zarr.open_group(backend, mode="r" if mode == "r" else "r+")
    except FileNotFoundError:
        raise StoreNotFoundError(f"no store at '{loc.raw}'") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreNotFoundError(f"'{loc.raw}' is not a sortkd-cache store ({exc})") from None
    store = CacheStore(loc, mode, group)
    store.meta  # noqa: B018 - validates schema and attributes now
    for path in (LABELS, PARAMS):
        store._array(path)
    return store


def _clear_local(loc: Location, overwrite: bool) -> None:
    """Empty an existing directory that is provably a store (``overwrite`` only), keeping its
    writer lock; an empty or missing directory is left as it is."""
    path = Path(loc.path)
    occupied = path.is_dir() and any(not c.name.startswith(".sortkd-lock") for c in path.iterdir())
    if not path.exists() or (path.is_dir() and not occupied):
        return
    if not overwrite:
        raise StoreExistsError(f"'{loc.raw}' already exists; pass --overwrite to replace it")
    check_replaceable(loc.raw, "store")
    clear_except_lock(path)


def create_store(
    location: StoreLike,
    meta: StoreMeta,
    labels: np.ndarray,
    *,
    overwrite: bool = False,
) -> CacheStore:
    """Create a new store; an existing one is replaced only with ``overwrite``."""
    loc = parse_location(location)
    if not loc.writable:
        raise StoreReadOnlyError(f"cannot create a store at '{loc.raw}' (read-only location)")
    if loc.kind == "dir":
        _clear_local(loc, overwrite)
    backend = open_backend(loc, "w")
    if loc.kind != "dir":  # mode "w" below empties the prefix: only ever a store's
        keys = list_keys(backend, loc)
        if not overwrite and keys:
            raise StoreExistsError(f"'{loc.raw}' already exists; pass --overwrite to replace it")
        if loc.kind != "object":
            check_replaceable(loc.raw, "store")
        elif keys and not backend_is_store_output(backend, loc):
            raise OutputError(
                f"store object {loc.raw} holds keys that are not a sortkd-cache store; "
                "overwrite only replaces a store"
            )
    group = zarr.open_group(backend, mode="a" if loc.kind == "dir" else "w")
    store = CacheStore(loc, "w", group)
    store.write_meta(meta)
    if labels.shape != (meta.num_samples,):
        raise StoreError(f"labels shape {labels.shape} does not match {meta.num_samples} samples")
    store.create_base_arrays(labels)
    return store
