"""``copy``: any readable store to a directory, a ``.zip``, ``s3://`` or ``gs://``.

The raw bytes of every key are copied as they are (no decoding, no re-encoding), so every
chunk keeps its checksum and a round trip dir -> zip -> dir is byte-identical. The writer lock
file and half-written ``*.partial`` files are not copied. A destination is never seen half
written; it is written aside, checked, then published:

* directory: written into ``DST.partial-<pid>``, verified, then renamed to ``DST``;
* zip: written into ``DST.partial-<pid>`` (stored, not recompressed), verified, then
  ``os.replace``-d onto ``DST``; a zip at an s3/gs URL is built locally, verified, and
  uploaded in one PUT (an object appears only once its upload completes);
* s3/gs prefix: the keys are written with the root ``zarr.json`` last: until it exists no
  reader sees a store there. The destination is then verified in place; when it fails the root
  ``zarr.json`` is removed again (unpublished). Overwriting first removes the old root
  ``zarr.json``, then the old keys.

An existing destination is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sortkd_cache.errors import (
    CorruptChunkError,
    StoreError,
    StoreExistsError,
    StoreLockedError,
    StoreReadOnlyError,
)
from sortkd_cache.store._backend import (
    ROOT_META,
    WRITABLE_REMOTE,
    Location,
    list_keys,
    open_backend,
    parse_location,
    read_keys,
    remote_error,
    remote_filesystem,
    run_sync,
    storage_options_for,
)
from sortkd_cache.store._lock import LOCK_NAME, _is_stale, read_lock
from sortkd_cache.store._meta import ATTRS_KEY
from sortkd_cache.store._store import CacheStore
from sortkd_cache.store._verify import (
    VerifyReport,
    _candidate_arrays,
    _chunk_keys,
    _open_for_verify,
    _progress,
    verify_store,
)

__all__ = ["CopyResult", "copy_store"]

_BATCH = 32
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class CopyResult:
    """What :func:`copy_store` did."""

    src: str
    dst: str
    keys: int
    bytes: int
    seconds: float
    verify: VerifyReport

    def to_dict(self) -> dict[str, Any]:
        return {
            "src": self.src,
            "dst": self.dst,
            "keys": self.keys,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "verify": self.verify.to_dict(),
        }


# -- source -----------------------------------------------------------------------------------
def _copyable(key: str) -> bool:
    return key != LOCK_NAME and ".partial" not in key


def _source_keys(source: CacheStore, backend: Any, loc: Location) -> dict[str, int | None]:
    """Keys to copy with their sizes (None when unknown: keys derived from the metadata)."""
    sizes = list_keys(backend, loc)
    if sizes is not None:
        return {k: n for k, n in sizes.items() if _copyable(k)}
    keys = [ROOT_META, "logits/zarr.json", "progress/zarr.json"]
    keys += [f"logits/{k}_topk/zarr.json" for k in ("raw", "sort", "swap")]
    for path in _candidate_arrays(source, None):
        keys.append(f"{path}/zarr.json")
        keys += [f"{path}/{key}" for _, key in _chunk_keys(source.raw_array(path))]
    return dict.fromkeys(keys)


def _check_source_unlocked(loc: Location) -> None:
    if loc.kind != "dir":
        return
    held = read_lock(loc.path)
    if held is not None and not _is_stale(held):
        raise StoreLockedError(
            f"store '{loc.raw}' is being written by {held.get('purpose', '?')} (host "
            f"{held.get('host')}, pid {held.get('pid')}, since {held.get('since')}); "
            "copy it when that writer is done"
        )


# -- destinations -----------------------------------------------------------------------------
class _Writer:
    """Write keys aside, then publish atomically (or abort, leaving nothing)."""

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        raise NotImplementedError

    def check(self, progress: bool) -> VerifyReport:
        raise NotImplementedError

    def publish(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


def _is_store_dir(path: Path) -> bool:
    meta = path / ROOT_META
    return meta.is_file() and ATTRS_KEY.encode() in meta.read_bytes()


class _DirWriter(_Writer):
    def __init__(self, loc: Location, overwrite: bool) -> None:
        self.final, self.raw, self.overwrite = Path(loc.path), loc.raw, overwrite
        if self.final.exists() and (not self.final.is_dir() or any(self.final.iterdir())):
            if not overwrite:
                raise StoreExistsError(
                    f"'{loc.raw}' already exists; pass --overwrite to replace it"
                )
            if not _is_store_dir(self.final):
                raise StoreExistsError(
                    f"'{loc.raw}' exists and is not a sortkd-cache store; refusing to replace it"
                )
            held = read_lock(self.final)
            if held is not None and not _is_stale(held):
                raise StoreLockedError(
                    f"'{loc.raw}' is being written by {held.get('purpose', '?')} (host "
                    f"{held.get('host')}, pid {held.get('pid')}, since {held.get('since')})"
                )
        self.tmp = self.final.with_name(f"{self.final.name}.partial-{os.getpid()}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        for key, data in items:
            path = self.tmp / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def check(self, progress: bool) -> VerifyReport:
        loc = Location(raw=str(self.tmp), kind="dir", scheme="file", path=str(self.tmp))
        return verify_store(loc, progress=progress)

    def publish(self) -> None:
        if not self.overwrite:
            try:  # atomic and never clobbers: rename fails onto a non-empty directory
                os.rename(self.tmp, self.final)
            except OSError:
                raise StoreExistsError(
                    f"'{self.raw}' appeared while copying; pass --overwrite to replace it"
                ) from None
            return
        old = self.final.with_name(f"{self.final.name}.old-{os.getpid()}")
        replaced = self.final.is_dir() and any(self.final.iterdir())
        if replaced:
            os.rename(self.final, old)
        elif self.final.is_dir():
            self.final.rmdir()
        os.rename(self.tmp, self.final)
        if replaced:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class _ZipWriter(_Writer):
    """A zip written aside, then moved onto a local path or uploaded to an s3/gs URL."""

    def __init__(self, loc: Location, overwrite: bool, opts: dict[str, Any] | None) -> None:
        self.loc, self.fs, self.remote_path, self.overwrite = loc, None, "", overwrite
        if loc.kind == "remote":
            fs_opts = storage_options_for(loc, opts)
            self.fs, self.remote_path = remote_filesystem(loc, fs_opts)
            try:
                exists = bool(self.fs.exists(self.remote_path))
            except Exception as exc:
                raise remote_error(loc, exc) from None
            self.tmp = Path(tempfile.mkdtemp(prefix="sortkd-copy-")) / Path(loc.path).name
        else:
            exists = os.path.exists(loc.path)
            self.tmp = Path(f"{loc.path}.partial-{os.getpid()}")
            self.tmp.parent.mkdir(parents=True, exist_ok=True)
        if exists and not overwrite:
            raise StoreExistsError(f"'{loc.raw}' already exists; pass --overwrite to replace it")
        self.zf = zipfile.ZipFile(self.tmp, "w", zipfile.ZIP_STORED, allowZip64=True)

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        for key, data in items:
            info = zipfile.ZipInfo(key, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            self.zf.writestr(info, data)

    def check(self, progress: bool) -> VerifyReport:
        self.zf.close()
        loc = Location(raw=str(self.tmp), kind="zip", scheme="file", path=str(self.tmp))
        return verify_store(loc, progress=progress)

    def publish(self) -> None:
        if self.fs is None:
            self._publish_local()
            return
        try:
            self.fs.put_file(str(self.tmp), self.remote_path)
        except Exception as exc:
            raise remote_error(self.loc, exc) from None
        finally:
            shutil.rmtree(self.tmp.parent, ignore_errors=True)

    def _publish_local(self) -> None:
        if self.overwrite:
            os.replace(self.tmp, self.loc.path)
            return
        try:  # a hard link never clobbers an existing file
            os.link(self.tmp, self.loc.path)
        except FileExistsError:
            raise StoreExistsError(
                f"'{self.loc.raw}' appeared while copying; pass --overwrite to replace it"
            ) from None
        except OSError:  # no hard links on this filesystem
            if os.path.exists(self.loc.path):
                raise StoreExistsError(
                    f"'{self.loc.raw}' appeared while copying; pass --overwrite to replace it"
                ) from None
            os.replace(self.tmp, self.loc.path)
            return
        self.tmp.unlink()

    def abort(self) -> None:
        self.zf.close()
        if self.fs is not None:
            shutil.rmtree(self.tmp.parent, ignore_errors=True)
        else:
            self.tmp.unlink(missing_ok=True)


class _RemoteWriter(_Writer):
    """Keys under an s3/gs prefix; the root zarr.json is written last (publishes the store)."""

    def __init__(self, loc: Location, overwrite: bool, opts: dict[str, Any] | None) -> None:
        self.loc, self.opts = loc, opts
        self.store = open_backend(loc, "w", opts)
        existing = list_keys(self.store, loc) or {}
        if existing and not overwrite:
            what = "a store" if ROOT_META in existing else "other keys (an interrupted copy?)"
            raise StoreExistsError(
                f"'{loc.raw}' already holds {what}; pass --overwrite to replace it"
            )
        self.root: bytes | None = None
        if existing:
            self._run(self.store.delete(ROOT_META))
            self._run(self.store.clear())

    def _run(self, coro: Any) -> Any:
        try:
            return run_sync(coro)
        except Exception as exc:
            raise remote_error(self.loc, exc) from None

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        import asyncio

        from zarr.core.buffer import default_buffer_prototype

        proto = default_buffer_prototype()
        todo = []
        for key, data in items:
            if key == ROOT_META:
                self.root = data
            else:
                todo.append(self.store.set(key, proto.buffer.from_bytes(data)))

        async def gather() -> None:
            await asyncio.gather(*todo)

        if todo:
            self._run(gather())

    def check(self, progress: bool) -> VerifyReport:
        from zarr.core.buffer import default_buffer_prototype

        if self.root is None:
            raise StoreError(f"the source has no {ROOT_META}; nothing to publish")
        proto = default_buffer_prototype()
        self._run(self.store.set(ROOT_META, proto.buffer.from_bytes(self.root)))
        return verify_store(self.loc, storage_options=self.opts, progress=progress)

    def publish(self) -> None:
        return None

    def abort(self) -> None:
        # best effort: without its root zarr.json nothing is published anyway
        with contextlib.suppress(Exception):
            run_sync(self.store.delete(ROOT_META))
            run_sync(self.store.clear())


def _writer(loc: Location, overwrite: bool, opts: dict[str, Any] | None) -> _Writer:
    if loc.is_zip and (loc.kind == "zip" or loc.scheme in WRITABLE_REMOTE):
        return _ZipWriter(loc, overwrite, opts)
    if loc.kind == "dir":
        return _DirWriter(loc, overwrite)
    if not loc.writable:
        raise StoreReadOnlyError(
            f"'{loc.raw}' is read-only ({loc.scheme}:// stores cannot be written); "
            "copy to a directory, a .zip, s3:// or gs://"
        )
    return _RemoteWriter(loc, overwrite, opts)


def _same(a: Location, b: Location) -> bool:
    if a.is_local and b.is_local:
        return os.path.realpath(a.path) == os.path.realpath(b.path)
    return a.path.rstrip("/") == b.path.rstrip("/")


def copy_store(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: bool = True,
    storage_options: dict[str, Any] | None = None,
    src_storage_options: dict[str, Any] | None = None,
    dst_storage_options: dict[str, Any] | None = None,
) -> CopyResult:
    """Copy a store key by key from ``src`` to ``dst``; see the module docstring.

    ``storage_options`` apply to both sides; ``src_/dst_storage_options`` are merged over
    them. The destination is verified before (local) or right after (s3/gs) it is published;
    a destination that does not verify is removed and :class:`CorruptChunkError` is raised.
    """
    t0 = time.perf_counter()
    src_loc, dst_loc = parse_location(src), parse_location(dst)
    src_opts = {**(storage_options or {}), **(src_storage_options or {})}
    dst_opts = {**(storage_options or {}), **(dst_storage_options or {})}
    if _same(src_loc, dst_loc):
        raise StoreError(f"source and destination are the same store: '{src_loc.raw}'")
    if dst_loc.kind == "remote" and dst_loc.scheme in ("http", "https"):
        raise StoreReadOnlyError(
            f"'{dst_loc.raw}' is read-only (http(s) stores cannot be written); "
            "copy to a directory, a .zip, s3:// or gs://"
        )
    _check_source_unlocked(src_loc)
    source, backend = _open_for_verify(src_loc, src_opts or None)
    source.meta  # noqa: B018 - refuses a malformed or newer-schema source before any copying
    keys = _source_keys(source, backend, src_loc)
    writer = _writer(dst_loc, overwrite, dst_opts or None)
    sizes = [n for n in keys.values() if n is not None]
    total = sum(sizes) if len(sizes) == len(keys) else None
    copied = nbytes = 0
    try:
        names = list(keys)
        with _progress(total, progress, f"copy -> {dst_loc.raw}", unit="B") as bar:
            for start in range(0, len(names), _BATCH):
                batch = names[start : start + _BATCH]
                values = read_keys(backend, src_loc, batch)
                items = [(k, v) for k, v in zip(batch, values, strict=True) if v is not None]
                writer.put_many(items)
                size = sum(len(v) for _, v in items)
                copied, nbytes = copied + len(items), nbytes + size
                bar.update(size)
        report = writer.check(progress)
        if not report.sound:
            first = report.problems[0]
            raise CorruptChunkError(
                f"the copy of '{src_loc.raw}' does not verify ({len(report.problems)} problem(s), "
                f"first: {first}); nothing was published; run `sortkd-cache verify {src_loc.raw}`"
            )
        writer.publish()
    except BaseException:
        writer.abort()
        raise
    report = dataclasses.replace(report, location=dst_loc.raw)
    return CopyResult(
        src=src_loc.raw,
        dst=dst_loc.raw,
        keys=copied,
        bytes=nbytes,
        seconds=time.perf_counter() - t0,
        verify=report,
    )
