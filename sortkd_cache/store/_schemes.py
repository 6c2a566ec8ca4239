"""Where a store can live: a location, and the registry of URL schemes.

A location is a local path (a directory, or a ``.zip`` file), a URL whose scheme is
registered in :data:`SCHEMES`, or a zarr ``Store`` object given by the caller (what zarr
itself accepts). A :class:`Scheme` is everything the store layer knows about one URL scheme:
how to open a zarr store there (its opener), whether stores there can be written and listed,
how its storage options are completed from the environment, and how a failed access becomes
one clear error line. The built-in schemes (``s3``, ``gs``/``gcs``, ``http``/``https``,
``memory``) are fsspec's (:mod:`._fsspec`); other packages add theirs through the
``sortkd_cache.backends`` entry-point group, an entry point ``name = "pkg.mod:SCHEME"`` naming
a :class:`Scheme` whose ``name`` is the entry point's.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from zarr.abc.store import Store

from sortkd_cache._registry import Registry, named_entry
from sortkd_cache.errors import RemoteStoreError, SortKDError, StoreNotFoundError

__all__ = [
    "SCHEMES",
    "Location",
    "Mode",
    "Scheme",
    "parse_location",
    "scheme_error",
]

Mode = Literal["r", "r+", "w"]


def scheme_error(loc: Location, exc: BaseException, opts: dict[str, Any]) -> Exception:
    """The default error mapping: one line naming the location and what went wrong."""
    if isinstance(exc, SortKDError):
        return exc
    first = (str(exc).splitlines() or [""])[0].strip() or type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return RemoteStoreError(f"'{loc.raw}': not found ({first})")
    if isinstance(exc, PermissionError):
        return RemoteStoreError(f"access to '{loc.raw}' denied ({first})")
    return RemoteStoreError(f"cannot open '{loc.raw}': {type(exc).__name__}: {first}")


def _same_options(loc: Location, opts: dict[str, Any]) -> dict[str, Any]:
    return dict(opts)


@dataclass(frozen=True)
class Scheme:
    """One URL scheme a store can live at (``s3``, ``https``, a plugin's ``abfs``).

    ``open(location, mode, storage_options)`` returns a zarr ``Store`` at the URL (read-only
    for mode ``"r"``); it need not check that a store is there: every open then fetches the
    root ``zarr.json`` once, so a wrong URL fails right away, through ``error``.
    """

    name: str
    open: Callable[[Location, Mode, dict[str, Any]], Store]
    #: stores at this scheme can be created and written (``copy``, ``sort --out``)
    writable: bool = True
    #: its keys can be listed (else they are derived from the store's metadata)
    lists: bool = True
    #: an exception of an access -> one clear error (a :class:`SortKDError`)
    error: Callable[[Location, BaseException, dict[str, Any]], Exception] = scheme_error
    #: the storage options completed (from the environment); may refuse early
    options: Callable[[Location, dict[str, Any]], dict[str, Any]] = _same_options
    #: its URLs start with a bucket that must exist (s3, gs): a missing one is named
    buckets: bool = False
    #: backed by an fsspec filesystem (``remote_filesystem``): a ``.zip`` at such a URL is read
    #: member by member, and ``copy`` uploads a ``.zip`` to a writable one
    fsspec: bool = False


#: The URL schemes, by name (lower case, as in ``s3://``).
SCHEMES: Registry[Scheme] = Registry(
    "URL scheme",
    error=RemoteStoreError,
    group="sortkd_cache.backends",
    adapt=named_entry(Scheme, "backend", RemoteStoreError),
)


@dataclass(frozen=True)
class Location:
    """A parsed store location."""

    raw: str
    kind: Literal["dir", "zip", "remote", "object"]
    scheme: str  # "file" for local paths, "" for a store object
    path: str  # local path, or the URL for remote stores
    #: the zarr Store a caller gave as the location (kind ``"object"``)
    store: Store | None = field(default=None, compare=False)

    @property
    def is_local(self) -> bool:
        return self.kind in ("dir", "zip")

    @property
    def is_zip(self) -> bool:
        """A zip archive, local or remote (always read-only)."""
        return self.kind == "zip" or (self.kind == "remote" and self.path.lower().endswith(".zip"))

    @property
    def writable(self) -> bool:
        if self.kind == "object":
            return self.store is not None and not self.store.read_only
        if self.kind == "remote":
            return self.scheme_info.writable and not self.is_zip
        return self.kind == "dir"

    @property
    def scheme_info(self) -> Scheme:
        """The registered scheme of a URL location."""
        return SCHEMES.get(self.scheme)


def parse_location(location: str | os.PathLike[str] | Store) -> Location:
    """Classify a store location; unknown URL schemes are refused with the scheme named."""
    if isinstance(location, Store):
        raw = f"<{type(location).__name__} {id(location):#x}>"
        return Location(raw=raw, kind="object", scheme="", path="", store=location)
    raw = os.fspath(location)
    if not raw.strip():
        raise StoreNotFoundError("empty store location")
    if "://" in raw:
        scheme = raw.split("://", 1)[0].lower()
        if scheme == "file":
            return dataclasses.replace(parse_location(raw.split("://", 1)[1]), raw=raw)
        if scheme not in SCHEMES:
            raise RemoteStoreError(
                f"unknown URL scheme '{scheme}' in '{raw}'; use a path, a .zip file, or a URL "
                f"of {', '.join(f'{s}://' for s in SCHEMES.names())}"
            )
        if not raw.split("://", 1)[1].strip("/"):
            raise RemoteStoreError(f"'{raw}' names no bucket or host")
        return Location(raw=raw, kind="remote", scheme=scheme, path=raw.rstrip("/"))
    path = str(Path(raw).expanduser())
    if path.lower().endswith(".zip"):
        return Location(raw=raw, kind="zip", scheme="file", path=path)
    return Location(raw=raw, kind="dir", scheme="file", path=path)
