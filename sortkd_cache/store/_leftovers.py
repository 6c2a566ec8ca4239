"""Leftovers of killed writers: a copy's ``DST.partial-PID`` and ``DST.old-PID``, keys that
are no part of the store, half-written ``*.partial`` files and the writer lock.

``copy`` writes a local destination into ``DST.partial-<pid>`` beside it, and an overwrite
moves the old store to ``DST.old-<pid>`` for the moment of the swap. A copy killed with
SIGKILL leaves them behind. The next ``copy`` to DST or ``verify`` of DST names each one
whose process no longer runs on this host and removes it; a ``DST.old-<pid>`` only while DST
itself exists (otherwise it is the only copy of the old store, and is left for the user).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from sortkd_cache.store._backend import Location
from sortkd_cache.store._checks import Problem
from sortkd_cache.store._lock import LOCK_NAME, _pid_alive, read_lock
from sortkd_cache.store._schema import is_schema_key

__all__ = ["clean_stale_siblings", "listing_checks"]

MAX_LISTED = 20  # foreign or partial keys named one by one; the rest are counted


def clean_stale_siblings(loc: Location) -> list[str]:
    """Remove ``NAME.partial-PID`` / ``NAME.old-PID`` beside a local ``loc`` whose PID is
    not running; returns one line per removal."""
    if not loc.is_local:
        return []
    final = Path(os.path.abspath(loc.path))
    pattern = re.compile(rf"^{re.escape(final.name)}\.(partial|old)-([0-9]{{1,10}})$")
    try:
        siblings = list(final.parent.iterdir())
    except OSError:
        return []
    removed = []
    for path in sorted(siblings):
        m = pattern.match(path.name)
        if m is None:
            continue
        pid = int(m.group(2))
        if pid == os.getpid() or _pid_alive(pid):
            continue
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
