"""`sortkd-cache report`: any runs side by side, in one self-contained report.

The inputs are any mix of run directories, sweep directories, recipe outputs, or folders
holding them (:mod:`._runs`). The runs are grouped into variants (:mod:`._group`:
every computing option but the seed; the options in which the runs differ are named), and per
variant the final test top-1 over its seeds gives mean ± sample std, min and max; each pair
(``variant - baseline``, default: against CE, sort/swap against raw, top-K against dense)
gives the per-seed differences over their common seeds, their mean ± std, a 95% t-interval
and how many seeds agree in sign (:mod:`._seed_table`); the conclusion says each pair in
words (:mod:`._words`). Curves: test top-1 and training loss by epoch, the mean over
seeds with a band from the lowest to the highest seed. Provenance: each run's cache (store
id), teacher sha256 and dataset fingerprint; runs from different caches, teachers or datasets
are flagged, and kept apart unless ``mix``.

OUT/report.json holds every figure; OUT/report.md and OUT/report.html show them (the HTML
embeds its plots and style: it fetches nothing). ``sweep`` and ``run`` end by writing this
report into their own output.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sortkd_cache.errors import ConfigError
from sortkd_cache.outputs import check_disjoint
from sortkd_cache.pipelines.recipes import recipe_context
from sortkd_cache.pipelines.report._group import Grouping, Variant, group_runs, pairs_for
from sortkd_cache.pipelines.report._render import render_html, render_markdown
from sortkd_cache.pipelines.report._runs import Run, Unfinished, find_runs, load_run
from sortkd_cache.pipelines.report._seed_table import SeedTable, mean_std, seed_table
from sortkd_cache.pipelines.report._words import conclusions

__all__ = [
    "REPORT_FILES",
    "build_report",
    "find_runs",
    "report",
    "report_members",
    "write_report",
]

REPORT_FILES = ("report.json", "report.md", "report.html")
SCHEMA = 1


def _num(x: float) -> float | None:
    """JSON has no NaN: None stands for a value that does not exist (no interval)."""
    return None if math.isnan(x) else x


def _band(values: list[list[float]]) -> dict[str, list[float | None]]:
    """Per epoch: the mean over the seeds that reached it, the lowest and the highest."""
    out: dict[str, list[float | None]] = {"mean": [], "low": [], "high": []}
    for at in values:
        out["mean"].append(_num(mean_std(at)[0]))
        out["low"].append(min(at))
        out["high"].append(max(at))
    return out


def _curves(v: Variant) -> dict[str, Any]:
    epochs = sorted({int(r["epoch"]) for run in v.runs for r in run.rows if "epoch" in r})
    curves: dict[str, Any] = {"epoch": epochs}
    for metric in ("test_top1", "loss"):
        per_epoch: list[list[float]] = [[] for _ in epochs]
        for run in v.runs:
            for r in run.rows:
                if isinstance(r.get(metric), (int, float)) and int(r.get("epoch", -1)) in epochs:
                    per_epoch[epochs.index(int(r["epoch"]))].append(float(r[metric]))
        curves[metric] = _band([at or [math.nan] for at in per_epoch])
    return curves


def _variant_json(v: Variant, table: SeedTable) -> dict[str, Any]:
    row = table.variant(v.name)
    return {
        "name": v.name, "options": v.options, "seeds": list(row.seeds),
        "test_top1": list(row.top1), "mean": row.mean, "std": row.std,
        "min": min(row.top1), "max": max(row.top1), "n": row.n,
        "seconds": [r.seconds for r in v.runs],
        "cache": v.provenance.label() if v.provenance else None,
        "runs": [str(r.path) for r in v.runs], "curves": _curves(v),
    }  # fmt: skip


def _paired_json(table: SeedTable) -> list[dict[str, Any]]:
    return [
        {"variant": p.variant, "baseline": p.baseline, "seeds": list(p.seeds),
         "diffs": list(p.diffs), "mean": p.mean, "std": p.std, "min": min(p.diffs),
         "max": max(p.diffs), "n": p.n, "wins": p.wins, "agree": p.agree,
         "low": _num(p.interval[0]), "high": _num(p.interval[1]),
         "within_noise": p.within_noise}
        for p in table.pairs
    ]  # fmt: skip


def build_report(
    runs: list[Run],
    *,
    baseline: str | None = None,
    mix: bool = False,
    unfinished: Sequence[Unfinished] = (),
    inputs: Sequence[str] = (),
    context: dict[str, Any] | None = None,
    strict: bool = True,
) -> dict[str, Any]:
    """report.json's data for ``runs`` (see the module docstring). A pair whose two variants
    share no seed is an error, or with ``strict`` False (a sweep whose members failed) left
    out."""
    g: Grouping = group_runs(runs, mix)
    records = [(v.name, r.seed, r.top1) for v in g.variants for r in v.runs]
    pairs = pairs_for(g.variants, baseline)
    if not strict:
        seeds = {v.name: {r.seed for r in v.runs} for v in g.variants}
        pairs = [(a, b) for a, b in pairs if seeds[a] & seeds[b]]
    table = seed_table(records, pairs)
    paired = _paired_json(table)
    common = {k: v for k, v in g.variants[0].options.items() if k not in g.varying}
    return {
        "schema": SCHEMA,
        "inputs": list(inputs),
        "baseline": baseline,
        "varying": g.varying,
        "common": common,
        "variants": [_variant_json(v, table) for v in g.variants],
        "paired": paired,
        "conclusions": conclusions(paired),
        "provenance": {"caches": g.caches, "flags": g.flags, "mixed": mix},
        "unfinished": [{"path": str(u.path), "why": u.why} for u in unfinished],
        "context": context,
    }


def _prepare_out(out: Path, inputs: Iterable[str]) -> None:
    """OUT is created, or is empty, or holds nothing but a report's files (which are
    replaced); it never overlaps an input."""
    check_disjoint(out, [("input", p) for p in inputs])
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out '{out}' is a file, not a directory")
    if out.is_dir():
        names = {p.name for p in out.iterdir()}
        other = names - {*REPORT_FILES, *(f"{n}.tmp" for n in REPORT_FILES)}
        if other:
            raise ConfigError(
                f"--out '{out}' holds other files than a report's ('{sorted(other)[0]}'); "
                "choose an empty or new directory"
            )
    out.mkdir(parents=True, exist_ok=True)


def write_report(out: Path, data: dict[str, Any]) -> str:
    """Write OUT/report.json, report.md and report.html (each replaced atomically); returns
    the Markdown."""
    text = render_markdown(data)
    for name, body in (
        ("report.json", json.dumps(data, indent=2, sort_keys=True, default=str)),
        ("report.md", text),
        ("report.html", render_html(data)),
    ):
        tmp = out / f"{name}.tmp"
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, out / name)
    return text


def _context_of(paths: Sequence[str]) -> dict[str, Any] | None:
    """A recipe output's own context (teacher, sort, timing), when one recipe is reported."""
    recipes = [Path(p) for p in paths if (Path(p) / "recipe.json").is_file()]
    if len(recipes) != 1 or len(paths) != 1:
        return None
    return recipe_context(recipes[0])


def report_members(
    out: Path,
    members: Sequence[tuple[str, str | None, str | None]],
    context: dict[str, Any] | None = None,
) -> tuple[dict[str, Any] | None, str]:
    """The report a sweep or a recipe writes into its own output ``out`` at its end, from its
    members ``(run directory, recipe label or None, error of a failed member or None)``;
    (None, "") when no member finished."""
    runs: list[Run] = []
    unfinished: list[Unfinished] = []
    for path, label, error in members:
        run = Path(path)
        if error is not None or not (run / "summary.json").is_file():
            unfinished.append(Unfinished(run, error or "not finished (no summary.json)"))
        else:
            runs.append(load_run(run, label))
    if not runs:
        return None, ""
    data = build_report(
        runs, unfinished=unfinished, inputs=[str(out)], context=context, strict=False
    )
    return data, write_report(out, data)


def report(
    paths: Sequence[str],
    out: str | os.PathLike[str] | None,
    *,
    baseline: str | None = None,
    mix: bool = False,
) -> tuple[dict[str, Any], str]:
    """Read the runs under ``paths``, write the report into ``out`` (None: only build it);
    (report.json's data, the Markdown)."""
    runs, unfinished = find_runs(paths)
    data = build_report(
        runs, baseline=baseline, mix=mix, unfinished=unfinished,
        inputs=[str(p) for p in paths], context=_context_of(paths),
    )  # fmt: skip
    if out is None:
        return data, render_markdown(data)
    _prepare_out(Path(out), paths)
    return data, write_report(Path(out), data)
