"""A sweep's directory: its grid (sweep.json), one run directory per member, its summary.

    DIR/sweep.json          the sweep: stack mode and every member's configuration
    DIR/<member>/           a run directory exactly like ``train``'s (see _rundir.py)
    DIR/summary.json        written last: each member's status (finished, failed) and top-1
    DIR/results.{json,md,png}  the sweep's table (variants: mean +- std, sort vs raw)
    DIR/.sortkd-lock.json   while a sweep writes it: the writer (see _rundir.py)

``--overwrite`` removes DIR only when it is provably a sweep directory (a sweep.json and
nothing but member run directories and the files above); ``--resume`` continues a sweep whose
grid is the same.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sortkd_cache.errors import ConfigError, RunDirError
from sortkd_cache.locks import LOCK_NAME, clear_except_lock
from sortkd_cache.outputs import (
    check_disjoint,
    check_replaceable,
    read_marker,
    register_output_kind,
    write_durably,
)
from sortkd_cache.pipelines.common.rundir import hold_writer_lock, is_run_dir

__all__ = [
    "SWEEP_FILES",
    "SweepDir",
    "describe_sweep",
    "is_sweep_dir",
    "member_summary",
    "read_sweep_summary",
]

#: a sweep's own files: its grid, its summary, its report (and the results files of a sweep
#: made before the report replaced them, so that --overwrite still recognises one)
SWEEP_FILES = (
    "sweep.json", "summary.json", "report.json", "report.md", "report.html",
    "results.json", "results.md", "results.png",
)  # fmt: skip


@register_output_kind("sweep", "a sweep directory")
def is_sweep_dir(location: str, storage_options: dict[str, Any] | None = None) -> bool:
    """A sweep directory: a sweep's ``sweep.json``, member run directories and sweep files."""
    path = Path(location)
    if not path.is_dir() or path.is_symlink() or not read_sweep(path):
        return False
    for p in path.iterdir():
        name = p.name[: -len(".tmp")] if p.name.endswith(".tmp") else p.name
        if (name in SWEEP_FILES or name == LOCK_NAME) and p.is_file():
            continue
        if not (p.is_dir() and (is_run_dir(str(p), None) or not any(p.iterdir()))):
            return False
    return True


def read_sweep(path: Path) -> dict[str, Any] | None:
    """DIR/sweep.json as a dict, or None when it is not a sweep's."""
    try:
        data = json.loads((path / "sweep.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("members"), list) else None


def read_sweep_summary(root: Path) -> dict[str, Any]:
    """DIR/summary.json (empty while the sweep runs); a damaged one is a ConfigError (exit 2)
    naming it."""
    path = root / "summary.json"
    if not path.exists():
        return {}
    data = read_marker(path)
    if data is None or not isinstance(data.get("members", {}), dict):
        raise ConfigError(
            f"sweep summary '{path}' is damaged (not a JSON object with members); resume the "
            "sweep with --resume to write it again"
        )
    return data


def member_summary(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A member's summary.json, None while it is unfinished (missing or unreadable)."""
    return read_marker(Path(run_dir) / "summary.json")


def _write(path: Path, data: Any) -> None:
    write_durably(path, json.dumps(data, indent=2, sort_keys=True, default=str))


class SweepDir:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    sweep = property(lambda self: self.path / "sweep.json")
    summary = property(lambda self: self.path / "summary.json")

    def prepare(
        self, grid: dict[str, Any], *, resume: bool, overwrite: bool, inputs: list[Any]
    ) -> None:
        """Refuse an output over an input; take the writer lock (a second writer exits 2
        naming the holder); refuse a finished sweep (unless overwrite), another sweep's
        directory with --resume (a different grid); then write sweep.json."""
        check_disjoint(self.path, inputs)
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"sweep directory '{self.path}' exists and is not a directory")
        hold_writer_lock(self.path, "sortkd-cache sweep", "sweep directory")
        if overwrite:
            check_replaceable(self.path, "sweep")
            clear_except_lock(self.path)
        old = read_sweep(self.path)
        if self.summary.exists() and not resume:
            raise RunDirError(
                f"sweep directory '{self.path}' holds a finished sweep (summary.json); "
                "choose another --out or pass --overwrite"
            )
        if old is not None and not resume:
            raise RunDirError(
                f"sweep directory '{self.path}' holds an unfinished sweep; pass --resume to "
                "continue it or --overwrite to start again"
            )
        if old is None and any(p.name != LOCK_NAME for p in self.path.iterdir()):
            raise RunDirError(
                f"'{self.path}' is not empty and holds no sweep; choose another --out"
            )
        if resume and old is not None:
            _same_grid(old, grid, self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        if self.summary.exists():
            self.summary.unlink()  # a resumed sweep writes it again at its end
        _write(self.sweep, grid)

    def write_summary(self, summary: dict[str, Any]) -> None:
        _write(self.summary, summary)


def _same_grid(old: dict[str, Any], new: dict[str, Any], path: Path) -> None:
    """Refuse a --resume with another grid or another --stack (its members would step
    otherwise than they started, and its summary would not be the uninterrupted one's)."""
    if "stack" in old and old["stack"] != new["stack"]:
        raise ConfigError(
            f"--resume: the sweep in '{path}' was started with --stack {old['stack']}, not "
            f"--stack {new['stack']}; resume it with --stack {old['stack']}"
        )
    names = [str(m.get("name")) for m in old["members"] if isinstance(m, dict)]
    now = [m["name"] for m in new["members"]]
    if names != now:
        gone = sorted(set(names) ^ set(now))
        which = f"member '{gone[0]}'" if gone else "the member order"
        raise ConfigError(
            f"--resume: the sweep in '{path}' has another grid ({which} differs); resume it "
            "unchanged or sweep into a new --out"
        )


def describe_sweep(path: str) -> dict[str, Any]:
    """A sweep directory's members: each one's status (finished, failed, running or not
    started: from its run directory and the sweep's summary) and final test top-1."""
    root = Path(path)
    grid_data = read_sweep(root)
    if grid_data is None:
        raise ConfigError(f"'{path}' is not a sweep directory (no sweep.json)")
    summary = read_sweep_summary(root).get("members", {})
    members: dict[str, dict[str, Any]] = {}
    for entry in grid_data["members"]:
        name = str(entry.get("name"))
        run = root / name
        info: dict[str, Any] = dict(summary.get(name, {}))
        done = member_summary(run)
        if "status" not in info:
            info["status"] = "finished" if done else "started" if run.is_dir() else "waiting"
        if info["status"] == "finished" and "final_test_top1" not in info:
            info["final_test_top1"] = (done or {}).get("final_test_top1")
        members[name] = info
    return {"sweep": str(root), "stack": grid_data.get("stack"), "members": members}
