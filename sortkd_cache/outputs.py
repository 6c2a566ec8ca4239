"""Outputs that cannot destroy inputs: resolve paths, refuse overlaps, prove an old output.

Every writing command (``dump --out``, ``sort --out``, ``copy``, ``train --out``) calls
:func:`check_disjoint` before it creates anything: local paths are resolved (``~``, symlinks,
``..``) and an output that is, contains or lies inside one of the command's inputs is refused;
s3/gs prefixes are compared the same way, as normalised URLs.

Before ``--overwrite`` removes or replaces anything, :func:`check_replaceable` proves that
the existing destination is an output of the same kind: a sortkd-cache store for ``copy``,
``sort`` and ``dump``, a training run directory for ``train``. Kinds are registered with
:func:`register_output_kind` (the store registers itself in ``sortkd_cache.store``, the run
directory in ``sortkd_cache.pipelines.common.rundir``); this module imports neither, so it sits
below both. Anything else (a file, a directory of other data) is never removed.

Markers of finished work (a run's or a sweep's ``summary.json``, a recipe's run state) are
written with :func:`write_durably` (fsynced, renamed into place, directory fsynced) and read
with :func:`read_marker`, for which an unreadable marker counts as absent: the work it marks
counts as unfinished.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sortkd_cache.errors import OutputError
from sortkd_cache.locks import LOCK_NAME

__all__ = [
    "OUTPUT_KINDS",
    "check_disjoint",
    "check_replaceable",
    "fsync_directory",
    "read_marker",
    "register_output_kind",
    "resolved",
    "write_durably",
]

#: kind name -> (what it is called in messages, proof that an existing location is one)
OUTPUT_KINDS: dict[str, tuple[str, Callable[[str, dict[str, Any] | None], bool]]] = {}


def register_output_kind(
    name: str, description: str
) -> Callable[
    [Callable[[str, dict[str, Any] | None], bool]], Callable[[str, dict[str, Any] | None], bool]
]:
    """Register ``proof(location, storage_options) -> bool`` for an output kind."""

    def deco(
        fn: Callable[[str, dict[str, Any] | None], bool],
    ) -> Callable[[str, dict[str, Any] | None], bool]:
        OUTPUT_KINDS[name] = (description, fn)
        return fn

    return deco


def resolved(location: str | os.PathLike[str]) -> str:
    """A comparable form: a local path with ``~``, symlinks and ``..`` resolved, or a URL
    without its trailing slashes (``file://`` URLs become paths)."""
    raw = os.fspath(location)
    if "://" in raw and not raw.lower().startswith("file://"):
        scheme, rest = raw.split("://", 1)
        return f"{scheme.lower()}://{rest.rstrip('/')}"
    if raw.lower().startswith("file://"):
        raw = raw[len("file://") :]
    return os.path.realpath(os.path.expanduser(raw))


def _inside(inner: str, outer: str) -> bool:
    sep = "/" if "://" in outer else os.sep
    return inner.startswith(outer.rstrip(sep) + sep)


def check_disjoint(
    output: str | os.PathLike[str],
    inputs: Iterable[tuple[str, str | os.PathLike[str] | None]],
    *,
    option: str = "--out",
) -> None:
    """Refuse an ``output`` that is, contains or lies inside one of ``inputs``, or a local
    one below a file (it could not be made).

    ``inputs``: (what the input is called, its location or None) pairs."""
    out = resolved(output)
    _check_below_directory(output, out, option)
    for name, location in inputs:
        if location is None:
            continue
        src = resolved(location)
        if out == src:
            how = "is"
        elif _inside(out, src):
            how = "lies inside"
        elif _inside(src, out):
            how = "contains"
        else:
            continue
        raise OutputError(
            f"{option} '{os.fspath(output)}' {how} the {name} '{os.fspath(location)}'; "
            "an output never overlaps an input: choose another path"
        )


def _check_below_directory(output: str | os.PathLike[str], out: str, option: str) -> None:
    if "://" in out:
        return
    parent = Path(out).parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(
            f"{option} '{os.fspath(output)}' cannot be made: '{parent}' is a file, not a directory"
        )


def check_replaceable(
    location: str | os.PathLike[str],
    kind: str,
    *,
    option: str = "--out",
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Before ``--overwrite`` replaces ``location``: refuse unless it is absent, empty, or
    provably an output of ``kind`` (see :data:`OUTPUT_KINDS`)."""
    if kind not in OUTPUT_KINDS:
        raise OutputError(f"unknown output kind '{kind}'; known: {', '.join(sorted(OUTPUT_KINDS))}")
    description, proof = OUTPUT_KINDS[kind]
    raw = os.fspath(location)
    if "://" not in raw or raw.lower().startswith("file://"):
        path = Path(resolved(raw))
        if not path.exists() or (path.is_dir() and not any(_unlocked(path))):
            return
    if not proof(raw, storage_options):
        raise OutputError(
            f"{option} '{raw}' exists and is not {description}; --overwrite only replaces "
            f"{description}, so it is left as it is: choose another path"
        )


def _unlocked(path: Path) -> list[Path]:
    """The entries of a directory but its writer lock (a directory holding only the lock of
    the writer about to replace it counts as empty)."""
    return [c for c in path.iterdir() if c.name != LOCK_NAME]


def write_durably(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` so that after a crash it is either the old file or the whole
    new one: into ``path.tmp``, fsynced, renamed over ``path``, then the directory fsynced."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    fsync_directory(target.parent)


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Make a rename in directory ``path`` durable (a no-op where directories cannot be
    opened, as on Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_marker(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A JSON marker of finished work as a dict; None when it is missing or unreadable (not
    JSON, not an object, cut short): the work counts as unfinished."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None
