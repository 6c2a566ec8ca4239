"""Where ``copy`` writes: aside, then published atomically (or aborted, leaving nothing).

Split out of :mod:`._copy` (see its docstring for the publication rules). Keys reaching a
writer come from the store's schema only; the directory writer checks once more that each
lands inside its private ``*.partial-<host>-<pid>`` directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from sortkd_cache.errors import (
    StoreError,
    StoreExistsError,
    StoreLockedError,
    StoreReadOnlyError,
)
from sortkd_cache.locks import is_stale, read_lock
from sortkd_cache.store._backend import (
    ROOT_META,
    Location,
    open_backend,
    remote_error,
    remote_filesystem,
    run_sync,
    storage_options_for,
)
from sortkd_cache.store._checks import VerifyReport
from sortkd_cache.store._keys import list_keys
from sortkd_cache.store._leftovers import sibling_path
from sortkd_cache.store._verify import verify_store
from sortkd_cache.store._zarr_compat import default_buffer_prototype

__all__ = ["make_writer"]

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


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


class _DirWriter(_Writer):
    def __init__(self, loc: Location, overwrite: bool) -> None:
        self.final, self.raw, self.overwrite = Path(loc.path), loc.raw, overwrite
        if self.final.exists() and (not self.final.is_dir() or any(self.final.iterdir())):
            if not overwrite:
                raise StoreExistsError(
                    f"'{loc.raw}' already exists; pass --overwrite to replace it"
                )
            held = read_lock(self.final)
            if held is not None and not is_stale(held):
                raise StoreLockedError(
                    f"'{loc.raw}' is being written by {held.get('purpose', '?')} (host "
                    f"{held.get('host')}, pid {held.get('pid')}, since {held.get('since')})"
                )
        self.tmp = sibling_path(self.final, "partial")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        root = os.path.realpath(self.tmp)
        for key, data in items:
            path = self.tmp / key
            if not os.path.realpath(path).startswith(root + os.sep):
                raise StoreError(f"refusing to write key {key!r} outside '{self.tmp}'")
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
        old = sibling_path(self.final, "old")
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
            self.tmp = sibling_path(Path(loc.path), "partial")
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


def _uploads_zip(loc: Location) -> bool:
    """A .zip at a writable fsspec URL: written aside, then uploaded whole."""
    return loc.kind == "remote" and loc.scheme_info.fsspec and loc.scheme_info.writable


def make_writer(loc: Location, overwrite: bool, opts: dict[str, Any] | None) -> _Writer:
    if loc.is_zip and (loc.kind == "zip" or _uploads_zip(loc)):
        return _ZipWriter(loc, overwrite, opts)
    if loc.kind == "dir":
        return _DirWriter(loc, overwrite)
    if not loc.writable:
        raise StoreReadOnlyError(
            f"'{loc.raw}' is read-only ({loc.scheme}:// stores cannot be written); "
            "copy to a directory, a .zip, s3:// or gs://"
        )
    return _RemoteWriter(loc, overwrite, opts)
