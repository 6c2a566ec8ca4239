"""Leftovers of killed writers: a copy's ``DST.partial-HOST-PID`` and ``DST.old-HOST-PID``,
keys that are no part of the store, half-written ``*.partial`` files and the writer lock.

``copy`` writes a local destination into ``DST.partial-<host>-<pid>`` beside it, and an
overwrite moves the old store to ``DST.old-<host>-<pid>`` for the moment of the swap. A copy
killed with SIGKILL leaves them behind. The next ``copy`` to DST or ``verify`` of DST names each
one written on this host whose process no longer runs, and removes it; a ``DST.old-...`` only
while DST itself exists (otherwise it is the only copy of the old store, and is left for the
user). One written on another host (a shared filesystem) is never removed: a PID says nothing
about a process elsewhere. Names without a host (``DST.partial-<pid>``, from versions before
0.2) count as this host's.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Sequence
from pathlib import Path

from sortkd_cache.locks import LOCK_NAME, pid_alive, read_lock
from sortkd_cache.store._backend import Location
from sortkd_cache.store._checks import Problem
from sortkd_cache.store._schema import is_schema_key

__all__ = ["clean_stale_siblings", "listing_checks", "sibling_path"]

MAX_LISTED = 20  # foreign or partial keys named one by one; the rest are counted


def _host() -> str:
    """This host's name as it appears in a sibling's name (no ``-``: that separates the pid)."""
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "_"


def sibling_path(final: Path, kind: str) -> Path:
    """``FINAL.<kind>-<host>-<pid>`` beside ``final`` (kind: ``partial`` or ``old``)."""
    return final.with_name(f"{final.name}.{kind}-{_host()}-{os.getpid()}")


def clean_stale_siblings(loc: Location) -> list[str]:
    """Remove ``NAME.partial-HOST-PID`` / ``NAME.old-HOST-PID`` beside a local ``loc`` written
    on this host by a process that is not running; returns one line per removal."""
    if not loc.is_local:
        return []
    final = Path(os.path.abspath(loc.path))
    pattern = re.compile(
        rf"^{re.escape(final.name)}\.(partial|old)-(?:([A-Za-z0-9_.]+)-)?([0-9]{{1,10}})$"
    )
    try:
        siblings = list(final.parent.iterdir())
    except OSError:
        return []
    removed = []
    for path in sorted(siblings):
        m = pattern.match(path.name)
        if m is None:
            continue
        host, pid = m.group(2), int(m.group(3))
        if (host is not None and host != _host()) or pid == os.getpid() or pid_alive(pid):
            continue  # another host's (its pid says nothing here), ours, or still running
        if m.group(1) == "old" and not final.exists():
            continue  # the old store is the only one left: never removed
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(f"removed '{path}', left by a killed copy (pid {pid} is not running)")
    return removed


def listing_checks(keys: Sequence[str] | None, loc: Location) -> tuple[list[Problem], list[str]]:
    """Problems and warnings found in the key listing alone (None: cannot list)."""
    problems: list[Problem] = []
    warnings: list[str] = []
    if keys is None:
        return problems, warnings
    partial = [k for k in keys if ".partial" in k]
    foreign = [k for k in keys if k != LOCK_NAME and ".partial" not in k and not is_schema_key(k)]
    for key in partial[:MAX_LISTED]:
        problems.append(Problem("partial", "half-written file left by a killed writer", chunk=key))
    for key in foreign[:MAX_LISTED]:
        problems.append(
            Problem(
                "foreign", "key is no part of the store layout (copy never writes it)", chunk=key
            )
        )
    for what, found in (("partial", partial), ("foreign", foreign)):
        if len(found) > MAX_LISTED:
            problems.append(Problem(what, f"... and {len(found) - MAX_LISTED} more such keys"))
    if LOCK_NAME in keys and loc.kind == "dir":
        held = read_lock(loc.path) or {}
        warnings.append(
            f"writer lock present: {held.get('purpose', '?')} (host {held.get('host')}, pid "
            f"{held.get('pid')}, since {held.get('since')}); the store may be changing"
        )
    return problems, warnings
