"""Results of ``sortkd-cache run``: results.json, the results.md table and results.png.

Per variant: the final-epoch test top-1 of each seed, their mean and sample standard
deviation (ddof=1; 0 with one seed), and the difference to the variant that is identical but
for ``logits = "raw"`` (where the recipe has one). Around it: the teacher's test top-1 and its
error rate on the stored training views (1 - mean accuracy over the N x V sample-views), how
many rows each sort method changed, and where the time went: teacher inference (the dump
stage) against student training (the sum over student runs).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sortkd_cache.pipelines._run_state import STORE_NAME, RunState, student_dir
from sortkd_cache.pipelines.recipe import Recipe, StudentSpec

if TYPE_CHECKING:
    from sortkd_cache.store import CacheStore

__all__ = ["collect_results", "format_table", "plot_results", "write_results"]


def _read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _mean_std(values: list[float]) -> tuple[float, float]:
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def _raw_twin(spec: StudentSpec, specs: tuple[StudentSpec, ...]) -> StudentSpec | None:
    if spec.loss == "ce" or spec.logits == "raw":
        return None
    want = {**spec.train_params(), "logits": "raw"}
    for other in specs:
        if other.train_params() == want and other.seeds == spec.seeds:
            return other
    return None


def _teacher(recipe: Recipe, out: Path, store: CacheStore) -> dict[str, Any]:
    """The teacher's test top-1 (when trained here) and its error rate on the stored views."""
    acc = list(store.meta.teacher_accuracy)
    view_acc = sum(acc) / len(acc) if acc else math.nan
    total_rows = store.num_samples * store.num_views
    teacher: dict[str, Any] = {"arch": recipe.teacher.arch, "checkpoint": recipe.teacher.checkpoint}
    if recipe.teacher.checkpoint is None:
        summary = _read_json(out / "teacher" / "summary.json")
        teacher.update(test_top1=summary["final_test_top1"], train_seconds=summary["seconds"])
    else:
        teacher.update(test_top1=None, train_seconds=None)
    teacher.update(
        train_view_accuracy=acc,
        train_view_error_rate=1.0 - view_acc,
        train_view_errors=round((1.0 - view_acc) * total_rows) if acc else None,
    )
    return teacher


def _sorts(recipe: Recipe, store: CacheStore) -> dict[str, Any]:
    """Per sort method: how many rows it changed, and its time."""
    total_rows = store.num_samples * store.num_views
    sort: dict[str, Any] = {}
    for method in recipe.sort.methods:
        attrs = store.kind_attrs(method)
        changed = int(sum(attrs.get("stats", {}).get("changed_rows", [])))
        sort[method] = {
            "changed_rows": changed,
            "total_rows": total_rows,
            "changed_fraction": changed / total_rows,
            "seconds": attrs.get("seconds"),
        }
    return sort


def _variants(recipe: Recipe, out: Path) -> list[dict[str, Any]]:
    """Per student variant: every seed's final test top-1, mean, std and the raw twin."""
    variants: list[dict[str, Any]] = []
    for spec in recipe.students:
        runs = [_read_json(student_dir(out, spec, s) / "summary.json") for s in spec.seeds]
        top1 = [float(r["final_test_top1"]) for r in runs]
        mean, std = _mean_std(top1)
        variants.append(
            {
                "name": spec.name,
                "student": spec.student,
                "loss": spec.loss,
                "logits": None if spec.loss == "ce" else spec.logits,
                "seeds": list(spec.seeds),
                "test_top1": top1,
                "mean": mean,
                "std": std,
                "n": len(top1),
                "seconds": [float(r["seconds"]) for r in runs],
                "twin": getattr(_raw_twin(spec, recipe.students), "name", None),
            }
        )
    by_name = {v["name"]: v["mean"] for v in variants}
    for v in variants:
        v["delta_vs_raw"] = v["mean"] - by_name[v["twin"]] if v["twin"] is not None else None
    return variants


def collect_results(recipe: Recipe, out: Path, stages: list[Any]) -> dict[str, Any]:
    """Everything the table and the plot show, read back from the stages' outputs."""
    from sortkd_cache.store import open_store

    store = open_store(str(out / STORE_NAME), "r")
    meta = store.meta
    teacher = _teacher(recipe, out, store)
    sort = _sorts(recipe, store)
    variants = _variants(recipe, out)
    dump_rec = RunState(out).get("dump") or {}
    forward = dump_rec.get("result", {}).get("forward_seconds", meta.dump_seconds)
    kd_epochs = sum(s.epochs * len(s.seeds) for s in recipe.students if s.loss != "ce")
    online = forward / store.num_views * kd_epochs if forward is not None else None
    return {
        "recipe": recipe.name,
        "dataset": recipe.dataset.spec,
        "samples": store.num_samples,
        "views": store.num_views,
        "classes": store.num_classes,
        "teacher": teacher,
        "sort": sort,
        "variants": variants,
        "timing": {
            "teacher_train_seconds": teacher["train_seconds"],
            "dump_seconds": meta.dump_seconds,
            "sort_seconds": sum(s["seconds"] or 0.0 for s in sort.values()),
            "student_train_seconds": sum(sum(v["seconds"]) for v in variants),
            "student_runs": sum(v["n"] for v in variants),
            "teacher_forward_seconds": forward,
            "online_teacher_estimate_seconds": online,
        },
        "stages": [s.to_dict() for s in stages],
    }


def _fmt(x: float | None, spec: str = ".2f", none: str = "n/a") -> str:
    return none if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def format_table(res: dict[str, Any]) -> str:
    """The Markdown results table with its summary lines."""
    t, tm = res["teacher"], res["timing"]
    rows = res["samples"] * res["views"]
    lines = [
        f"## {res['recipe']}: {res['dataset']}, {res['samples']} samples x {res['views']} views",
        "",
    ]
    teacher_test = f"test top-1 {_fmt(t['test_top1'])}%, " if t["test_top1"] is not None else ""
    errors = f" ({t['train_view_errors']} of {rows} sample-views)" if t["train_view_errors"] else ""
    lines.append(
        f"- teacher {t['arch']}: {teacher_test}train-view error rate "
        f"{_fmt(100 * t['train_view_error_rate'])}%{errors}"
    )
    for method, s in res["sort"].items():
        lines.append(
            f"- {method} changed {s['changed_rows']} of {s['total_rows']} rows "
            f"({_fmt(100 * s['changed_fraction'])}%)"
        )
    runs = max(tm["student_runs"], 1)
    teach = (
        f"; teacher training {_fmt(tm['teacher_train_seconds'], '.1f')} s"
        if tm["teacher_train_seconds"] is not None
        else ""
    )
    lines.append(
        f"- time: teacher inference (dump) {_fmt(tm['dump_seconds'], '.1f')} s vs student "
        f"training {_fmt(tm['student_train_seconds'], '.1f')} s ({tm['student_runs']} runs, "
        f"{_fmt(tm['student_train_seconds'] / runs, '.1f')} s each){teach}; "
        f"sort {_fmt(tm['sort_seconds'], '.1f')} s"
    )
    if tm["online_teacher_estimate_seconds"] is not None:
        lines.append(
            f"- online KD would instead run the teacher every epoch of every KD/DKD run: about "
            f"{_fmt(tm['online_teacher_estimate_seconds'], '.1f')} s of teacher forwards "
            f"(estimate: the dump's {_fmt(tm['teacher_forward_seconds'], '.1f')} s of forwards "
            f"/ {res['views']} views x the epochs of those runs)"
        )
    lines += [
        "",
        "| variant | student | loss | logits | test top-1 % (mean ± std) | Δ vs raw | seeds "
        "| s / run |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for v in res["variants"]:
        delta = "" if v["delta_vs_raw"] is None else f"{v['delta_vs_raw']:+.2f}"
        per_run = sum(v["seconds"]) / max(len(v["seconds"]), 1)
        lines.append(
            f"| {v['name']} | {v['student']} | {v['loss']} | {v['logits'] or '-'} "
            f"| {_fmt(v['mean'])} ± {_fmt(v['std'])} | {delta} | {v['n']} | {per_run:.1f} |"
        )
    lines += [
        "",
        "Test top-1 is the final epoch's; ± is the sample standard deviation over seeds; "
        "Δ vs raw compares with the same variant trained on raw logits.",
    ]
    return "\n".join(lines) + "\n"


def plot_results(res: dict[str, Any], path: Path) -> None:
    """Bar chart: mean test top-1 per variant, error bars one standard deviation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = res["variants"]
    names = [v["name"] for v in variants]
    means = [v["mean"] for v in variants]
    stds = [v["std"] for v in variants]
    colors = {None: "#8c8c8c", "raw": "#4c72b0", "sort": "#dd8452", "swap": "#55a868"}
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names) + 2), 4.2))
    ax.bar(
        range(len(names)),
        means,
        yerr=stds,
        capsize=5,
        color=[colors.get(v["logits"], "#8172b3") for v in variants],
    )
    for i, (m, s) in enumerate(zip(means, stds, strict=True)):
        ax.text(i, m + s, f"{m:.2f}", ha="center", va="bottom", fontsize=8)
    teacher = res["teacher"]["test_top1"]
    tops = [m + s for m, s in zip(means, stds, strict=True)]
    if teacher is not None:
        ax.axhline(teacher, color="black", linestyle="--", linewidth=1, label="teacher")
        ax.legend(loc="lower right")
        tops.append(teacher)
    low = min(m - s for m, s in zip(means, stds, strict=True))
    ax.set_ylim(max(0.0, low - 3.0), min(100.0, max(tops) + 2.0))
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=20, ha="right")
    ax.set_ylabel("test top-1 (%)  [axis does not start at 0]")
    seeds = max((v["n"] for v in variants), default=0)
    ax.set_title(f"{res['recipe']}: mean ± std over {seeds} seed(s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(out: Path, res: dict[str, Any]) -> str:
    """Write results.json, results.md and results.png into ``out``; returns the table."""
    table = format_table(res)
    for name, text in (
        ("results.json", json.dumps(res, indent=2, sort_keys=True, default=str)),
        ("results.md", table),
    ):
        tmp = out / f"{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)
    plot_results(res, out / "results.png")
    return table
