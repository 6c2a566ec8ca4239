"""Where a store lives: a local directory, a ``.zip`` file, or an s3:// gs:// https:// URL.

This module maps a location string to a zarr ``Store``. Remote access goes through fsspec;
credentials and endpoints come from the standard environment (AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, GOOGLE_APPLICATION_CREDENTIALS, ...) and from ``storage_options``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sortkd_cache.errors import RemoteStoreError, StoreNotFoundError, StoreReadOnlyError

__all__ = ["REMOTE_SCHEMES", "Location", "open_backend", "parse_location"]

REMOTE_SCHEMES = ("s3", "gs", "gcs", "http", "https")
WRITABLE_REMOTE = ("s3", "gs", "gcs")

Mode = Literal["r", "r+", "w"]


@dataclass(frozen=True)
class Location:
    """A parsed store location."""

    raw: str
    kind: Literal["dir", "zip", "remote"]
    scheme: str  # "file" for local paths
    path: str  # local path, or the URL for remote stores

    @property
    def is_local(self) -> bool:
        return self.kind != "remote"

    @property
    def writable(self) -> bool:
        return self.kind == "dir" or (self.kind == "remote" and self.scheme in WRITABLE_REMOTE)


def parse_location(location: str | os.PathLike[str]) -> Location:
    """Classify a store location; unknown URL schemes are refused with the scheme named."""
    raw = os.fspath(location)
    if "://" in raw:
        scheme = raw.split("://", 1)[0].lower()
        if scheme == "file":
            return parse_location(raw.split("://", 1)[1])
        if scheme not in REMOTE_SCHEMES:
            raise RemoteStoreError(
                f"unknown URL scheme '{scheme}' in '{raw}'; use a path, a .zip file, "
                "or an s3://, gs://, http(s):// URL"
            )
        kind: Literal["dir", "zip", "remote"] = "remote"
        return Location(raw=raw, kind=kind, scheme=scheme, path=raw)
    path = str(Path(raw).expanduser())
    if path.lower().endswith(".zip"):
        return Location(raw=raw, kind="zip", scheme="file", path=path)
    return Location(raw=raw, kind="dir", scheme="file", path=path)


def open_backend(loc: Location, mode: Mode, storage_options: dict[str, Any] | None = None) -> Any:
    """A zarr store object for ``loc``. ``mode='r'`` opens read-only."""
    from zarr.storage import FsspecStore, LocalStore, ZipStore

    read_only = mode == "r"
    if loc.kind == "zip":
        if not read_only:
            raise StoreReadOnlyError(
                f"zip store '{loc.raw}' is read-only; write a directory store, then "
                f"`sortkd-cache copy DIR {loc.raw}`"
            )
        if not os.path.isfile(loc.path):
            raise StoreNotFoundError(f"no store at '{loc.raw}' (file not found)")
        return ZipStore(loc.path, mode="r", read_only=True)
    if loc.kind == "dir":
        if read_only and not os.path.isdir(loc.path):
            raise StoreNotFoundError(f"no store at '{loc.raw}' (directory not found)")
        return LocalStore(loc.path, read_only=read_only)
    if not read_only and loc.scheme not in WRITABLE_REMOTE:
        raise StoreReadOnlyError(
            f"'{loc.raw}' is read-only ({loc.scheme}:// stores cannot be written)"
        )
    opts = dict(storage_options or {})
    if loc.scheme in ("http", "https"):
        opts.setdefault("block_size", 0)
    try:
        return FsspecStore.from_url(loc.path, storage_options=opts, read_only=read_only)
    except ImportError as exc:
        raise RemoteStoreError(
            f"cannot open '{loc.raw}': {exc.name or exc} is not installed "
            f"(pip install 'sortkd-cache[{'gcs' if loc.scheme in ('gs', 'gcs') else 's3'}]')"
        ) from None
    except (ValueError, OSError) as exc:
        raise RemoteStoreError(f"cannot open '{loc.raw}': {exc}") from None
