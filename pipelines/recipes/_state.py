"""The state file of ``sortkd-cache run``: which stage ran with which configuration.

OUT/run-state.json maps each stage ("teacher", "dump", "sort:sort", "student:kd-sort:seed0",
...) to the hash of the configuration it was started with, that configuration, its status
("started" or "complete"), an output token (what later stages depend on) and a small result.
A stage's configuration includes the output tokens of the stages it reads, so a stage that
reruns with a new output invalidates everything downstream of it and nothing upstream.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sortkd_cache.errors import ConfigError
from sortkd_cache.outputs import read_marker, write_durably

if TYPE_CHECKING:
    from sortkd_cache.pipelines.recipes._specs import StudentSpec

__all__ = ["STATE_NAME", "STORE_NAME", "RunState", "config_hash", "describe_change", "student_dir"]

STATE_NAME = "run-state.json"
#: The recipe's store, inside its output directory.
STORE_NAME = "store.zarr"
STATE_VERSION = 1
#: Configuration keys that hold an upstream stage's output token.
UPSTREAM_KEYS = ("teacher", "dump", "input")


def student_dir(out: str | os.PathLike[str], spec: StudentSpec, seed: int) -> Path:
    """The run directory of one student variant and seed."""
    return Path(out) / "students" / spec.slug / f"seed{seed}"


def config_hash(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable configuration."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_change(old: dict[str, Any], new: dict[str, Any]) -> str:
    """One line naming what differs between two stage configurations."""
    parts: list[str] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if key in UPSTREAM_KEYS:
            parts.append(f"{key} output changed")
        else:
            parts.append(f"{key} {json.dumps(a)} -> {json.dumps(b)}")
    return "changed: " + ("; ".join(parts) if parts else "configuration")


class RunState:
    """The JSON state file in a run's output directory (written atomically)."""

    def __init__(self, out: Path) -> None:
        self.path = out / STATE_NAME
        self.stages: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            data = read_marker(self.path)
            if data is None:  # cut short or damaged: no stage counts as complete
                print(
                    f"note: run state '{self.path}' is unreadable; every stage counts as "
                    "unfinished",
                    file=sys.stderr,
                    flush=True,
                )
                return
            if data.get("version") != STATE_VERSION:
                raise ConfigError(
                    f"run state '{self.path}' has an unknown format; delete it to start afresh"
                )
            self.stages = dict(data.get("stages", {}))

    def get(self, stage: str) -> dict[str, Any] | None:
        return self.stages.get(stage)

    def start(self, stage: str, config: dict[str, Any]) -> None:
        self.stages[stage] = {
            "hash": config_hash(config),
            "config": config,
            "status": "started",
        }
        self.save()

    def finish(self, stage: str, token: str, result: dict[str, Any]) -> None:
        rec = self.stages[stage]
        rec.update(status="complete", token=token, result=result)
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": STATE_VERSION, "stages": self.stages}
        write_durably(self.path, json.dumps(data, indent=2, sort_keys=True, default=str))
