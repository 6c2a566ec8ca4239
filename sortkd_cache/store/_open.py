"""Open an existing store, or create a new one (replacing only a store, with overwrite)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from sortkd_cache.errors import (
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
from sortkd_cache.store._store import CacheStore

__all__ = ["create_store", "open_store"]


def open_store(
    location: str | os.PathLike[str],
    mode: Mode = "r",
    *,
    storage_options: dict[str, Any] | None = None,
) -> CacheStore:
    """Open an existing store (directory, .zip, s3://, gs://, https://)."""
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
    location: str | os.PathLike[str],
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
        if not overwrite and list_keys(backend, loc):
            raise StoreExistsError(f"'{loc.raw}' already exists; pass --overwrite to replace it")
        check_replaceable(loc.raw, "store")
    group = zarr.open_group(backend, mode="a" if loc.kind == "dir" else "w")
    store = CacheStore(loc, "w", group)
    store.write_meta(meta)
    if labels.shape != (meta.num_samples,):
        raise StoreError(f"labels shape {labels.shape} does not match {meta.num_samples} samples")
    store.create_base_arrays(labels)
    return store
