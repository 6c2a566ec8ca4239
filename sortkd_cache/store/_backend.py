"""Where a store lives: a local directory, a ``.zip`` file, or an s3:// gs:// http(s):// URL.

This module maps a location string to a zarr ``Store``. Remote access goes through fsspec.

* Credentials and endpoints come from the standard environment (``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL[_S3]``,
  ``GOOGLE_APPLICATION_CREDENTIALS``, ``STORAGE_EMULATOR_HOST``) and from ``storage_options``
  (``--storage-option key=value``), which win over the environment.
* A zip anywhere (``team.zip``, ``s3://b/team.zip``, ``https://host/team.zip``) is read-only
  and read member by member (remote zips with HTTP range requests); nothing is extracted.
* Remote stores opened read-only keep the chunks they read in an in-process LRU cache
  (``SORTKD_REMOTE_CACHE_MB``, default 1024; 0 disables), so repeated epochs over the same
  views do not download them again.
* Every remote open first fetches the root ``zarr.json`` once, so an unknown scheme, an
  unreachable endpoint, missing credentials or a path that holds no store fail right away
  with one clear :class:`RemoteStoreError` / :class:`StoreNotFoundError` line.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import fsspec
from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper
from fsspec.implementations.zip import ZipFileSystem
from zarr.abc.store import Store
from zarr.storage import FsspecStore, LocalStore, WrapperStore, ZipStore

from sortkd_cache.errors import (
    RemoteStoreError,
    SortKDError,
    StoreNotFoundError,
    StoreReadOnlyError,
)
from sortkd_cache.store._readcache import cache_bytes, read_cache_store
from sortkd_cache.store._zarr_compat import default_buffer_prototype, run_sync
from sortkd_cache.store._zipcheck import member_checked_store

__all__ = [
    "REMOTE_SCHEMES",
    "Location",
    "fs_store",
    "open_backend",
    "parse_location",
    "remote_error",
    "remote_filesystem",
    "run_sync",
    "storage_options_for",
]

REMOTE_SCHEMES = ("s3", "gs", "gcs", "http", "https")
WRITABLE_REMOTE = ("s3", "gs", "gcs")
ROOT_META = "zarr.json"

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
    def is_zip(self) -> bool:
        """A zip archive, local or remote (always read-only)."""
        return self.kind == "zip" or self.path.lower().endswith(".zip")

    @property
    def writable(self) -> bool:
        return self.kind == "dir" or (
            self.kind == "remote" and self.scheme in WRITABLE_REMOTE and not self.is_zip
        )


def parse_location(location: str | os.PathLike[str]) -> Location:
    """Classify a store location; unknown URL schemes are refused with the scheme named."""
    raw = os.fspath(location)
    if not raw.strip():
        raise StoreNotFoundError("empty store location")
    if "://" in raw:
        scheme = raw.split("://", 1)[0].lower()
        if scheme == "file":
            return dataclasses.replace(parse_location(raw.split("://", 1)[1]), raw=raw)
        if scheme not in REMOTE_SCHEMES:
            raise RemoteStoreError(
                f"unknown URL scheme '{scheme}' in '{raw}'; use a path, a .zip file, "
                "or an s3://, gs://, http(s):// URL"
            )
        if not raw.split("://", 1)[1].strip("/"):
            raise RemoteStoreError(f"'{raw}' names no bucket or host")
        return Location(raw=raw, kind="remote", scheme=scheme, path=raw.rstrip("/"))
    path = str(Path(raw).expanduser())
    if path.lower().endswith(".zip"):
        return Location(raw=raw, kind="zip", scheme="file", path=path)
    return Location(raw=raw, kind="dir", scheme="file", path=path)


def storage_options_for(loc: Location, storage_options: dict[str, Any] | None) -> dict[str, Any]:
    """fsspec options of a remote location: the given ones, completed from the environment."""
    opts = dict(storage_options or {})
    if loc.scheme == "s3":
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        client_kwargs = opts.get("client_kwargs") or {}
        if endpoint and "endpoint_url" not in opts and "endpoint_url" not in client_kwargs:
            opts["endpoint_url"] = endpoint
    elif loc.scheme in ("gs", "gcs"):
        _check_gcs_credentials(loc, opts)
    return opts


def _check_gcs_credentials(loc: Location, opts: dict[str, Any]) -> None:
    """Refuse early (instead of probing a metadata server) when no GCS credentials exist."""
    if "token" in opts or os.environ.get("STORAGE_EMULATOR_HOST"):
        return
    if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return
    cfg = os.path.expanduser(os.environ.get("CLOUDSDK_CONFIG") or "~/.config/gcloud")
    if os.path.isfile(os.path.join(cfg, "application_default_credentials.json")):
        return
    raise RemoteStoreError(
        f"no Google Cloud credentials for '{loc.raw}': set GOOGLE_APPLICATION_CREDENTIALS, run "
        "`gcloud auth application-default login`, or pass --storage-option token=anon "
        "(public bucket) or token=cloud (on GCP)"
    )


def _gcs_endpoint(opts: dict[str, Any]) -> str | None:
    """An explicit gs:// endpoint (an emulator): ``endpoint_url``, or ``STORAGE_EMULATOR_HOST``."""
    if opts.get("endpoint_url"):
        return str(opts["endpoint_url"])
    host = os.environ.get("STORAGE_EMULATOR_HOST", "")
    if host in ("", "default"):
        return None
    return host if host.startswith(("http://", "https://")) else f"http://{host}"


def _check_reachable(loc: Location, endpoint: str) -> None:
    """One TCP connection to an explicit endpoint: gcsfs retries a refused connection for
    about 30 s before it gives up, so a wrong emulator address is refused right away."""
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "", port), timeout=10).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RemoteStoreError(f"cannot reach {endpoint} for '{loc.raw}': {reason}") from None


def remote_filesystem(
    loc: Location, opts: dict[str, Any], *, asynchronous: bool = False
) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem of a remote location and the path inside it.

    gcsfs's default filesystem asks Google's storage-control gRPC API for each bucket's type
    on every call. An emulator serves only the JSON API: the lookup then fails with a logged
    warning per call (and, with ``token=anon``, retries for minutes), so gs:// at an emulator
    uses gcsfs's plain JSON-API filesystem instead.
    """
    kwargs = {"asynchronous": True, **opts} if asynchronous else dict(opts)
    if loc.scheme in ("gs", "gcs") and _gcs_endpoint(opts):
        from gcsfs.core import GCSFileSystem  # type: ignore[import-untyped, import-not-found]

        fs = GCSFileSystem(**kwargs)
        return fs, str(fs._strip_protocol(loc.path))
    found: tuple[fsspec.AbstractFileSystem, str] = fsspec.core.url_to_fs(loc.path, **kwargs)
    return found


def _endpoint(loc: Location, opts: dict[str, Any]) -> str:
    if loc.scheme == "s3":
        ep = storage_options_for(loc, opts).get("endpoint_url")
        ep = ep or (opts.get("client_kwargs") or {}).get("endpoint_url")
        return str(ep or "the default AWS S3 endpoint")
    if loc.scheme in ("http", "https"):
        return f"{loc.scheme}://{urlsplit(loc.path).netloc}"
    return _gcs_endpoint(opts) or "the default Google Cloud Storage endpoint"


def remote_error(
    loc: Location, exc: BaseException, opts: dict[str, Any] | None = None
) -> Exception:
    """One clear error for a failed remote access (credentials, reachability, permission)."""
    if isinstance(exc, SortKDError):
        return exc
    names = " ".join(c.__name__ for c in type(exc).__mro__)
    first = (str(exc).splitlines() or [type(exc).__name__])[0].strip() or type(exc).__name__
    if isinstance(exc, ImportError):
        extra = "gcs" if loc.scheme in ("gs", "gcs") else "s3"
        package = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs"}.get(loc.scheme, "aiohttp")
        missing = exc.name if exc.name and exc.name.split(".")[0] != "fsspec" else package
        return RemoteStoreError(
            f"cannot open '{loc.raw}': {missing} is not installed "
            f"(pip install 'sortkd-cache[{extra}]')"
        )
    if any(k in names for k in ("NoCredentials", "CredentialRetrieval", "DefaultCredentials")):
        hint = (
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or pass "
            "--storage-option anon=true for a public bucket"
            if loc.scheme == "s3"
            else "set GOOGLE_APPLICATION_CREDENTIALS or pass --storage-option token=anon"
        )
        return RemoteStoreError(f"no credentials for '{loc.raw}': {hint}")
    if isinstance(exc, FileNotFoundError):
        return RemoteStoreError(f"'{loc.raw}': not found ({first})")
    if isinstance(exc, PermissionError) or "AccessDenied" in first or "Forbidden" in first:
        return RemoteStoreError(f"access to '{loc.raw}' denied ({first}); check the credentials")
    connection = ("EndpointConnection", "ClientConnector", "ConnectionError", "ConnectTimeout")
    if any(k in names for k in connection) or isinstance(exc, (OSError, TimeoutError)):
        where = _endpoint(loc, opts or {})
        return RemoteStoreError(f"cannot reach {where} for '{loc.raw}': {first}")
    return RemoteStoreError(f"cannot open '{loc.raw}': {type(exc).__name__}: {first}")


def _remote_zip(loc: Location, opts: dict[str, Any]) -> FsspecStore:
    """A read-only store over a zip at a URL, read member by member with range requests."""
    opts = {k: v for k, v in opts.items() if k != "block_size"}
    fs, path = remote_filesystem(loc, opts)
    try:
        handle = fs.open(path, "rb", block_size=1 << 20, cache_type="blockcache")
        zfs = ZipFileSystem(fo=handle)
    except FileNotFoundError:
        raise StoreNotFoundError(f"no store at '{loc.raw}' (file not found)") from None
    except zipfile.BadZipFile:
        raise StoreNotFoundError(f"'{loc.raw}' is not a zip file") from None
    except ValueError as exc:
        if "range" in str(exc).lower():
            raise RemoteStoreError(
                f"'{loc.raw}': the server does not support HTTP range requests, which reading "
                "a zip remotely needs; download it and open the local file"
            ) from None
        raise
    return FsspecStore(AsyncFileSystemWrapper(zfs, asynchronous=True), path="", read_only=True)


def _open_remote(loc: Location, mode: Mode, opts: dict[str, Any]) -> Store:
    if loc.is_zip:
        if mode != "r":
            raise StoreReadOnlyError(f"zip store '{loc.raw}' is read-only")
        return member_checked_store(_remote_zip(loc, opts), loc.raw)
    if loc.scheme in ("http", "https"):
        opts.setdefault("block_size", 0)
    fs, path = remote_filesystem(loc, opts, asynchronous=True)
    if not fs.async_impl:
        fs = AsyncFileSystemWrapper(fs, asynchronous=True)
    return FsspecStore(fs=fs, path=path, read_only=mode == "r")


def _probe(loc: Location, store: Store, mode: Mode, opts: dict[str, Any]) -> None:
    """Fetch the root zarr.json once: fail early, clearly, on a bad endpoint or location."""
    try:
        value = run_sync(store.get(ROOT_META, default_buffer_prototype()))
    except Exception as exc:
        raise remote_error(loc, exc, opts) from None
    if value is None and loc.scheme in WRITABLE_REMOTE and _bucket_missing(store):
        bucket = urlsplit(loc.path).netloc
        if mode == "r":
            raise StoreNotFoundError(f"no store at '{loc.raw}': bucket '{bucket}' does not exist")
        raise RemoteStoreError(f"bucket '{bucket}' of '{loc.raw}' does not exist; create it first")
    if value is None and mode == "r":
        raise StoreNotFoundError(f"no store at '{loc.raw}' (no {ROOT_META} there)")


def fs_store(store: Store) -> FsspecStore:
    """The fsspec-backed store (with ``fs`` and ``path``) inside the wrappers of a remote one."""
    while not isinstance(store, FsspecStore) and isinstance(store, WrapperStore):
        store = store._store
    if not isinstance(store, FsspecStore):
        raise TypeError(f"{type(store).__name__} is not backed by an fsspec filesystem")
    return store


def _bucket_missing(store: Store) -> bool:
    """True only when the server says the bucket of an s3/gs store does not exist."""
    inner = fs_store(store)
    fs, bucket = inner.fs, inner.path.split("/", 1)[0]

    async def info() -> None:
        await fs._info(bucket)

    try:
        run_sync(info())
    except FileNotFoundError:
        return True
    except Exception:  # forbidden, unreachable...: not a proof that the bucket is missing
        return False
    return False


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


def open_backend(loc: Location, mode: Mode, storage_options: dict[str, Any] | None = None) -> Store:
    """A zarr store object for ``loc``. ``mode='r'`` opens read-only."""
    read_only = mode == "r"
    if loc.kind != "remote":
        return _open_local(loc, read_only)
    if not read_only and loc.scheme not in WRITABLE_REMOTE:
        raise StoreReadOnlyError(
            f"'{loc.raw}' is read-only ({loc.scheme}:// stores cannot be written)"
        )
    opts = storage_options_for(loc, storage_options)
    endpoint = _gcs_endpoint(opts) if loc.scheme in ("gs", "gcs") else None
    if endpoint:
        _check_reachable(loc, endpoint)
    try:
        store = _open_remote(loc, mode, opts)
    except SortKDError:
        raise
    except Exception as exc:
        raise remote_error(loc, exc, opts) from None
    max_bytes = cache_bytes()
    if read_only and max_bytes > 0:
        store = read_cache_store(store, max_bytes)
    _probe(loc, store, mode, opts)
    return store
