"""The built-in URL schemes, all through fsspec: ``s3``, ``gs``/``gcs``, ``http``/``https``
and ``memory`` (fsspec's in-process filesystem: a store in a user's tests).

* Credentials and endpoints come from the standard environment (``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL[_S3]``,
  ``GOOGLE_APPLICATION_CREDENTIALS``, ``STORAGE_EMULATOR_HOST``) and from ``storage_options``
  (``--storage-option key=value``), which win over the environment.
* A zip at a URL (``s3://b/team.zip``, ``https://host/team.zip``) is read-only and read member
  by member (HTTP range requests); nothing is extracted.
* Each scheme maps a failed access to one clear :class:`RemoteStoreError` line (missing
  package, credentials, reachability, permission).
"""

from __future__ import annotations

import os
import socket
import zipfile
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import fsspec
from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper
from fsspec.implementations.zip import ZipFileSystem
from zarr.abc.store import Store
from zarr.storage import FsspecStore, WrapperStore

from sortkd_cache._net import remote_timeout
from sortkd_cache.errors import (
    RemoteStoreError,
    SortKDError,
    StoreNotFoundError,
    StoreReadOnlyError,
)
from sortkd_cache.store._schemes import SCHEMES, Location, Mode, Scheme
from sortkd_cache.store._timeouts import bounded, s3_timeouts
from sortkd_cache.store._zarr_compat import run_sync
from sortkd_cache.store._zipcheck import member_checked_store

__all__ = ["bucket_missing", "fs_store", "fsspec_scheme", "remote_filesystem"]


def _s3_options(loc: Location, opts: dict[str, Any]) -> dict[str, Any]:
    """``AWS_ENDPOINT_URL[_S3]`` unless an endpoint is given; botocore's time limits from
    ``SORTKD_REMOTE_TIMEOUT`` unless given."""
    opts = dict(opts)
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    client_kwargs = opts.get("client_kwargs") or {}
    if endpoint and "endpoint_url" not in opts and "endpoint_url" not in client_kwargs:
        opts["endpoint_url"] = endpoint
    return s3_timeouts(opts, remote_timeout())


def _gcs_options(loc: Location, opts: dict[str, Any]) -> dict[str, Any]:
    """Refuse early (instead of probing a metadata server) when no GCS credentials exist, and
    at an explicit endpoint (an emulator) when it cannot be reached."""
    _check_gcs_credentials(loc, opts)
    endpoint = _gcs_endpoint(opts)
    if endpoint:
        _check_reachable(loc, endpoint)
    return dict(opts)


def _check_gcs_credentials(loc: Location, opts: dict[str, Any]) -> None:
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
        socket.create_connection((parts.hostname or "", port), timeout=remote_timeout()).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RemoteStoreError(f"cannot reach {endpoint} for '{loc.raw}': {reason}") from None


def remote_filesystem(
    loc: Location, opts: dict[str, Any], *, asynchronous: bool = False
) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem of a URL location and the path inside it.

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


def _s3_endpoint(loc: Location, opts: dict[str, Any]) -> str:
    ep = _s3_options(loc, opts).get("endpoint_url")
    ep = ep or (opts.get("client_kwargs") or {}).get("endpoint_url")
    return str(ep or "the default AWS S3 endpoint")


def _http_endpoint(loc: Location, opts: dict[str, Any]) -> str:
    return f"{loc.scheme}://{urlsplit(loc.path).netloc}"


def _gcs_endpoint_named(loc: Location, opts: dict[str, Any]) -> str:
    return _gcs_endpoint(opts) or "the default Google Cloud Storage endpoint"


_S3_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or pass "
    "--storage-option anon=true for a public bucket"
)
_GCS_HINT = "set GOOGLE_APPLICATION_CREDENTIALS or pass --storage-option token=anon"
_CONNECTION = ("EndpointConnection", "ClientConnector", "ConnectionError", "ConnectTimeout")


def fsspec_error(
    loc: Location,
    exc: BaseException,
    opts: dict[str, Any],
    *,
    package: str,
    extra: str,
    hint: str,
    endpoint: Callable[[Location, dict[str, Any]], str],
) -> Exception:
    """One clear error for a failed access (package, credentials, reachability, permission)."""
    if isinstance(exc, SortKDError):
        return exc
    names = " ".join(c.__name__ for c in type(exc).__mro__)
    first = (str(exc).splitlines() or [type(exc).__name__])[0].strip() or type(exc).__name__
    if isinstance(exc, ImportError):
        missing = exc.name if exc.name and exc.name.split(".")[0] != "fsspec" else package
        return RemoteStoreError(
            f"cannot open '{loc.raw}': {missing} is not installed "
            f"(pip install 'sortkd-cache[{extra}]')"
        )
    if any(k in names for k in ("NoCredentials", "CredentialRetrieval", "DefaultCredentials")):
        return RemoteStoreError(f"no credentials for '{loc.raw}': {hint}")
    if isinstance(exc, FileNotFoundError):
        return RemoteStoreError(f"'{loc.raw}': not found ({first})")
    if isinstance(exc, PermissionError) or "AccessDenied" in first or "Forbidden" in first:
        return RemoteStoreError(f"access to '{loc.raw}' denied ({first}); check the credentials")
    if any(k in names for k in _CONNECTION) or isinstance(exc, (OSError, TimeoutError)):
        where = endpoint(loc, opts)
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


def _open_fsspec(loc: Location, mode: Mode, opts: dict[str, Any], *, whole: bool) -> Store:
    """An FsspecStore at ``loc`` (``whole``: fetch files whole, no block reads: http)."""
    if loc.is_zip:
        if mode != "r":
            raise StoreReadOnlyError(f"zip store '{loc.raw}' is read-only")
        return member_checked_store(_remote_zip(loc, opts), loc.raw)
    if whole:
        opts.setdefault("block_size", 0)
    fs, path = remote_filesystem(loc, opts, asynchronous=True)
    if not fs.async_impl:
        fs = AsyncFileSystemWrapper(fs, asynchronous=True)
    return FsspecStore(fs=fs, path=path, read_only=mode == "r")


def fs_store(store: Store) -> FsspecStore:
    """The fsspec-backed store (with ``fs`` and ``path``) inside the wrappers of a remote one."""
    while not isinstance(store, FsspecStore) and isinstance(store, WrapperStore):
        store = store._store
    if not isinstance(store, FsspecStore):
        raise TypeError(f"{type(store).__name__} is not backed by an fsspec filesystem")
    return store


def bucket_missing(store: Store) -> bool:
    """True only when the server says the bucket of an s3/gs store does not exist."""
    inner = fs_store(store)
    fs, bucket = inner.fs, inner.path.split("/", 1)[0]

    async def info() -> None:
        await fs._info(bucket)

    try:
        run_sync(bounded(info(), remote_timeout()))
    except FileNotFoundError:
        return True
    except Exception:  # forbidden, unreachable...: not a proof that the bucket is missing
        return False
    return False


def fsspec_scheme(
    name: str,
    *,
    writable: bool = True,
    lists: bool = True,
    buckets: bool = False,
    whole: bool = False,
    package: str,
    extra: str,
    hint: str = "",
    endpoint: Callable[[Location, dict[str, Any]], str] | None = None,
    options: Callable[[Location, dict[str, Any]], dict[str, Any]] | None = None,
) -> Scheme:
    """A scheme served by fsspec's filesystem of ``name`` (``package`` implements it);
    ``whole``: files are fetched whole (no block reads: http)."""
    error = partial(
        fsspec_error,
        package=package,
        extra=extra,
        hint=hint or "check the storage options",
        endpoint=endpoint or (lambda loc, opts: f"{loc.scheme}://"),
    )
    return Scheme(
        name,
        open=partial(_open_fsspec, whole=whole),
        writable=writable,
        lists=lists,
        buckets=buckets,
        error=error,
        options=options or (lambda loc, opts: dict(opts)),
        fsspec=True,
    )


for _scheme in (
    fsspec_scheme(
        "s3", buckets=True, package="s3fs", extra="s3", hint=_S3_HINT, endpoint=_s3_endpoint,
        options=_s3_options,
    ),
    *(
        fsspec_scheme(
            gs, buckets=True, package="gcsfs", extra="gcs", hint=_GCS_HINT,
            endpoint=_gcs_endpoint_named,
            options=_gcs_options,
        )
        for gs in ("gs", "gcs")
    ),
    *(
        fsspec_scheme(h, writable=False, lists=False, whole=True, package="aiohttp",
                      extra="s3", endpoint=_http_endpoint)
        for h in ("http", "https")
    ),
    fsspec_scheme("memory", package="fsspec", extra="s3"),
):  # fmt: skip
    SCHEMES.add(_scheme.name, _scheme)
