"""The runs a report reads: found under any mix of run, sweep and recipe directories.

A run directory holds ``config.json`` (a train configuration: it names a ``student``); it is
finished when it also holds ``summary.json``. Every other directory given is searched: a
recipe output (``recipe.json``) through its ``students/`` folder only (its teacher is no
student), a sweep directory (``sweep.json``) through its members, any other folder through
its subfolders; a Zarr store is not entered. A member that a sweep marked failed, or a run
without ``summary.json``, is listed as unfinished and left out of the table.

Per run: its seed, its computing options (every :class:`TrainConfig` field that is neither
runtime nor inapplicable to the run, the loss's own options flattened in), its final test
top-1, its metrics rows, and its provenance: the cache's store id, the teacher's weights
sha256 and the dataset's fingerprint.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sortkd_cache.errors import ConfigError
from sortkd_cache.options import opt_of
from sortkd_cache.pipelines.configs import TrainConfig
from sortkd_cache.pipelines.recipes import slugify
from sortkd_cache.pipelines.train import APPLIES

__all__ = ["LOSS_KEY", "Provenance", "Run", "Unfinished", "find_runs", "load_run", "options_of"]

#: the prefix of a loss option among a run's options (``loss.temperature``)
LOSS_KEY = "loss."
#: config.json entries that are records, not options
_RECORDS = frozenset({"resolved", "provenance", "replay_of", "seed"})


@dataclass(frozen=True)
class Provenance:
    """Where a run's soft labels came from (None where it read no cache)."""

    store_id: str | None
    teacher_sha256: str | None
    dataset_fingerprint: str | None

    def label(self) -> str:
        if self.store_id is None:
            return "no cache"
        return f"cache {self.store_id[:8]}"


@dataclass(frozen=True)
class Run:
    path: Path
    seed: int
    options: dict[str, Any]  #: computing options (JSON values), the seed left out
    top1: float  #: final test top-1 (%)
    seconds: float
    rows: tuple[dict[str, Any], ...]  #: metrics.jsonl, one row per epoch
    provenance: Provenance
    label: str | None = None  #: the recipe's variant name, for a recipe's student


@dataclass(frozen=True)
class Unfinished:
    path: Path
    why: str


def _read(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"'{path}': damaged {what} ({why})") from None


def _is_run(path: Path) -> bool:
    config = path / "config.json"
    if not config.is_file():
        return False
    data = _read(config, "config.json")
    return isinstance(data, dict) and "student" in data


def _walk(path: Path, labels: dict[str, str]) -> Iterator[tuple[Path, str | None]]:
    """Every run directory under ``path`` with its recipe label (depth first, sorted)."""
    if _is_run(path):
        yield path, labels.get(slugify(path.parent.name)) if labels else None
        return
    if (path / "zarr.json").is_file() or path.name.endswith((".zarr", ".zip")):
        return
    if (path / "recipe.json").is_file():  # a recipe output: its students, in its order
        labels = _recipe_labels(path / "recipe.json")
        yield from _walk(path / "students", labels) if (path / "students").is_dir() else ()
        return
    order = list(labels)  # a recipe's students folder: the recipe's variants first, in order
    children = sorted(path.iterdir(), key=lambda c: (order.index(c.name) if c.name in order
                                                     else len(order), c.name))  # fmt: skip
    for child in children:
        if child.is_dir() and not child.is_symlink():
            yield from _walk(child, labels)


def _recipe_labels(path: Path) -> dict[str, str]:
    """A recipe's variant names by their folder name (slug)."""
    recipe = _read(path, "recipe.json")
    students = recipe.get("students", []) if isinstance(recipe, dict) else []
    return {slugify(str(s["name"])): str(s["name"]) for s in students if "name" in s}


def _failed_members(paths: Iterable[Path]) -> dict[Path, str]:
    """Members that a sweep's summary.json marks failed, with the error."""
    failed: dict[Path, str] = {}
    for sweep in {p.parent for p in paths}:
        summary = sweep / "summary.json"
        if not (sweep / "sweep.json").is_file() or not summary.is_file():
            continue
        members = _read(summary, "sweep summary.json").get("members", {})
        for name, info in members.items():
            if isinstance(info, dict) and info.get("status") == "failed":
                failed[(sweep / name).resolve()] = str(info.get("error", "failed"))
    return failed


def options_of(config: dict[str, Any]) -> dict[str, Any]:
    """The options that decide what a run computes: no runtime field, none that does
    nothing in this run (``logits`` of a CE run), ``data_seed`` None read as "the seed"."""
    known = {f.name: f for f in fields(TrainConfig)}
    view = SimpleNamespace(**{k: config.get(k) for k in known})
    out: dict[str, Any] = {}
    for key, value in config.items():
        f = known.get(key)
        if key in _RECORDS or (f is not None and opt_of(f).runtime):
            continue
        applies = opt_of(f).applies if f is not None else None
        if applies is not None and not APPLIES[applies][0](view):
            continue
        if key == "loss_options" and isinstance(value, dict):
            out.update({LOSS_KEY + k: v for k, v in value.items()})
        elif key == "data_seed" and value is None:
            out[key] = "seed"
        else:
            out[key] = value
    if "topk" in out and out["topk"] is None:
        out["topk"] = (config.get("resolved") or {}).get("topk")
    return out


def _provenance(config: dict[str, Any]) -> Provenance:
    prov = config.get("provenance") or {}
    resolved = config.get("resolved") or {}
    fingerprint = (prov.get("dataset") or {}).get("fingerprint") or resolved.get("fingerprint")
    return Provenance(prov.get("store_id"), (prov.get("teacher") or {}).get("sha256"), fingerprint)


def _rows(path: Path) -> tuple[dict[str, Any], ...]:
    if not path.is_file():
        return ()
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise ConfigError(f"'{path}': damaged metrics.jsonl (line {n})") from None
    return tuple(rows)


def load_run(path: Path, label: str | None = None) -> Run:
    """One finished run directory; a damaged file is a :class:`ConfigError` naming it."""
    config = _read(path / "config.json", "config.json")
    summary = _read(path / "summary.json", "summary.json")
    top1 = summary.get("final_test_top1") if isinstance(summary, dict) else None
    seconds = summary.get("seconds", math.nan) if isinstance(summary, dict) else math.nan
    if not isinstance(top1, (int, float)) or isinstance(top1, bool) or not math.isfinite(top1):
        raise ConfigError(f"'{path / 'summary.json'}': damaged summary.json (no final_test_top1)")
    seed = config.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"'{path / 'config.json'}': damaged config.json (seed {seed!r})")
    return Run(
        path=path, seed=seed, options=options_of(config), top1=float(top1),
        seconds=float(seconds), rows=_rows(path / "metrics.jsonl"),
        provenance=_provenance(config), label=label,
    )  # fmt: skip


def find_runs(paths: Iterable[str | Path]) -> tuple[list[Run], list[Unfinished]]:
    """The finished runs under ``paths`` (each once, in the order found) and the unfinished
    ones. A missing path, or no finished run at all, is a :class:`ConfigError`."""
    found: dict[Path, tuple[Path, str | None]] = {}  # by resolved path: as found, label
    given = [Path(p) for p in paths]
    for p in given:
        if not p.is_dir():
            raise ConfigError(f"report: '{p}' is not a directory")
        for run, label in _walk(p, {}):
            found.setdefault(run.resolve(), (run, label))
    failed = _failed_members(found)
    runs: list[Run] = []
    unfinished: list[Unfinished] = []
    for real, (path, label) in found.items():
        if real in failed:
            unfinished.append(Unfinished(path, failed[real]))
        elif not (path / "summary.json").is_file():
            unfinished.append(Unfinished(path, "not finished (no summary.json)"))
        else:
            runs.append(load_run(path, label))
    if not runs:
        where = ", ".join(f"'{p}'" for p in given)
        raise ConfigError(
            f"report: no finished run under {where} (a run directory holds config.json and "
            "summary.json)"
        )
    return runs, unfinished
