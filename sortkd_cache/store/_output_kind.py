"""The proof that an existing location is a sortkd-cache store, registered as the ``store``
output kind of :mod:`sortkd_cache.outputs` (what ``--overwrite`` may replace)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from zarr.abc.store import Store

from sortkd_cache.errors import StoreError
from sortkd_cache.outputs import register_output_kind
from sortkd_cache.store._backend import ROOT_META, Location, open_backend, parse_location
from sortkd_cache.store._keys import list_keys, read_keys
from sortkd_cache.store._meta import ATTRS_KEY
from sortkd_cache.store._schema import is_schema_key

__all__ = ["backend_is_store_output", "is_store_output"]


def _has_store_record(doc: bytes | None) -> bool:
    if doc is None:
        return False
    try:
        parsed = json.loads(doc)
    except ValueError:
        return False
    attrs = parsed.get("attributes") if isinstance(parsed, dict) else None
    return isinstance(attrs, dict) and isinstance(attrs.get(ATTRS_KEY), dict)


@register_output_kind("store", "a sortkd-cache store")
def is_store_output(location: str, storage_options: dict[str, Any] | None = None) -> bool:
    """A store: its root ``zarr.json`` holds the provenance record, or (a copy or dump
    killed before its root was written) every key it holds is a key of the store layout."""
    loc = parse_location(location)
    if loc.kind == "dir":
        root = Path(loc.path)
        if not root.is_dir():
            return False
        try:
            if _has_store_record((root / ROOT_META).read_bytes()):
                return True
        except OSError:
            pass
        files = [p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()]
        return all(is_schema_key(k) or k.startswith(".sortkd-lock") for k in files)
    if loc.kind == "zip":
        try:
            with zipfile.ZipFile(loc.path) as zf:
                return _has_store_record(zf.read(ROOT_META))
        except (OSError, KeyError, zipfile.BadZipFile):
            return False
    try:
        backend = open_backend(loc, "r" if loc.is_zip else "w", storage_options)
    except (StoreError, OSError, ValueError):
        return False
    return backend_is_store_output(backend, loc)


def backend_is_store_output(backend: Store, loc: Location) -> bool:
    """The proof of :func:`is_store_output` over an opened (remote or object) store."""
    try:
        if _has_store_record(read_keys(backend, loc, [ROOT_META])[0]):
            return True
        keys = list_keys(backend, loc)
    except (StoreError, OSError, ValueError):
        return False
    return keys is not None and all(is_schema_key(k) for k in keys)
