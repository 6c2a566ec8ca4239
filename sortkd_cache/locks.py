"""Writer exclusion for local output directories: one process writes a store, a run directory,
a sweep directory or a recipe's output at a time.

The lock is a small JSON file (``.sortkd-lock.json``) created with O_EXCL inside the directory.
It names the holder (host, pid, since, purpose). A second writer is refused with
:class:`~sortkd_cache.errors.StoreLockedError` (exit 2) naming the holder. A lock left by a
process that no longer runs on this host is recognised as stale and taken over, saying so on
stderr. Remote stores (s3, gs) have no lock: writing them is done by ``copy``, which publishes
atomically.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sortkd_cache.errors import StoreLockedError

__all__ = ["LOCK_NAME", "clear_except_lock", "is_stale", "pid_alive", "read_lock", "writer_lock"]

LOCK_NAME = ".sortkd-lock.json"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_lock(store_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The current lock record of a local store, or None when it is not locked."""
    path = Path(store_dir) / LOCK_NAME
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return {"host": "?", "pid": -1, "since": "?", "purpose": "?"}
    return record if isinstance(record, dict) else None


def is_stale(record: dict[str, Any]) -> bool:
    pid = record.get("pid")
    if record.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    return pid != os.getpid() and not pid_alive(pid)


def clear_except_lock(directory: str | os.PathLike[str]) -> None:
    """Remove everything in ``directory`` but its writer lock (``--overwrite`` under the lock)."""
    for child in Path(directory).iterdir():
        if child.name.startswith(".sortkd-lock"):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _say_takeover(noun: str, directory: Path, held: dict[str, Any]) -> None:
    print(
        f"note: {noun} '{directory}': took over the writer lock of {held.get('purpose', '?')} "
        f"(host {held.get('host')}, pid {held.get('pid')}, since {held.get('since')}), which "
        "no longer runs",
        file=sys.stderr,
        flush=True,
    )


@contextlib.contextmanager
def writer_lock(
    store_dir: str | os.PathLike[str], purpose: str, noun: str = "store"
) -> Iterator[None]:
    """Hold the writer lock of a local directory for the duration of the block; ``noun``
    names what the directory is in messages (store, run directory, sweep directory)."""
    directory = Path(store_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    record = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "purpose": purpose,
    }
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            held = read_lock(directory)
            if held is not None and is_stale(held):
                path.unlink(missing_ok=True)
                _say_takeover(noun, directory, held)
                continue
            if held is None:
                continue
            raise StoreLockedError(
                f"{noun} '{directory}' is being written by {held.get('purpose', '?')} "
                f"(host {held.get('host')}, pid {held.get('pid')}, since {held.get('since')}); "
                f"wait for it, or delete {path} if that process is gone"
            ) from None
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
        break
    else:  # pragma: no cover - only under a pathological race
        raise StoreLockedError(f"{noun} '{directory}': could not take the writer lock {path}")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            held = read_lock(directory)
            if held is not None and held.get("pid") == os.getpid():
                path.unlink()
