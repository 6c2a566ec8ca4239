"""Results of ``sortkd-cache run``: results.json, the results.md table and results.png.

Per variant: the final-epoch test top-1 of each seed, their mean and sample standard
deviation (ddof=1; 0 with one seed), min and max (:mod:`._seed_table`, shared with ``sweep``).
Paired by seed: each distilled variant against the recipe's CE variant (same student), each
sort/swap variant against its twin on raw logits, and each top-K variant against its dense
twin. Around it: the teacher's test top-1 and its error rate on the stored training views
(1 - mean accuracy over the N x V sample-views), how many rows each sort method changed, and
where the time went: teacher inference (the dump stage) against student training.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sortkd_cache.pipelines._run_state import STORE_NAME, RunState, student_dir
from sortkd_cache.pipelines._seed_table import SeedTable, format_seed_table, seed_table
from sortkd_cache.pipelines.recipe import Recipe, StudentSpec
from sortkd_cache.store import open_store

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from sortkd_cache.store import CacheStore

__all__ = ["collect_results", "format_table", "plot_results", "write_results"]


def _read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _twin(spec: StudentSpec, specs: tuple[StudentSpec, ...], **change: Any) -> str | None:
    """The variant identical to ``spec`` but for ``change``, with the same seeds."""
    want = {**spec.train_params(), **change}
    want = {k: v for k, v in want.items() if not (k in ("topk", "sparse_tail") and v is None)}
    for other in specs:
        if other is not spec and other.train_params() == want and other.seeds == spec.seeds:
            return other.name
    return None


def _raw_twin(spec: StudentSpec, specs: tuple[StudentSpec, ...]) -> str | None:
    if spec.loss == "ce" or spec.logits == "raw":
        return None
    return _twin(spec, specs, logits="raw")


def pairs_of(recipe: Recipe) -> list[tuple[str, str]]:
    """``(variant, baseline)`` pairs: distilled vs CE, sort/swap vs raw, top-K vs dense."""
    specs = recipe.students
    pairs: list[tuple[str, str]] = []
    for spec in specs:
        if spec.loss == "ce":
            continue
        ce = next((o for o in specs if o.loss == "ce" and o.student == spec.student), None)
        if ce is not None and set(ce.seeds) & set(spec.seeds):
            pairs.append((spec.name, ce.name))
        raw = _raw_twin(spec, specs)
        if raw is not None:
            pairs.append((spec.name, raw))
        if spec.topk is not None:
            dense = _twin(spec, specs, topk=None, sparse_tail=None)
            if dense is not None:
                pairs.append((spec.name, dense))
    return pairs


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
    """Per student variant: every seed's final test top-1 and seconds, and its raw twin."""
    variants: list[dict[str, Any]] = []
    for spec in recipe.students:
        runs = [_read_json(student_dir(out, spec, s) / "summary.json") for s in spec.seeds]
        variants.append(
            {
                "name": spec.name,
                "student": spec.student,
                "loss": spec.loss,
                "logits": None if spec.loss == "ce" else spec.logits,
                "topk": spec.topk,
                "seeds": list(spec.seeds),
                "test_top1": [float(r["final_test_top1"]) for r in runs],
                "seconds": [float(r["seconds"]) for r in runs],
                "twin": _raw_twin(spec, recipe.students),
            }
        )
    return variants


def _table(variants: list[dict[str, Any]], pairs: list[tuple[str, str]]) -> SeedTable:
    records = [
        (v["name"], seed, top1)
        for v in variants
        for seed, top1 in zip(v["seeds"], v["test_top1"], strict=True)
    ]
    return seed_table(records, pairs)


def _with_stats(variants: list[dict[str, Any]], table: SeedTable) -> list[dict[str, Any]]:
    """Each variant's dict with its mean, std, n and (where it has a raw twin) delta_vs_raw."""
    for v in variants:
        row = table.variant(v["name"])
        v.update(mean=row.mean, std=row.std, n=row.n)
    by_name = {v["name"]: v["mean"] for v in variants}
    for v in variants:
        v["delta_vs_raw"] = v["mean"] - by_name[v["twin"]] if v["twin"] is not None else None
    return variants


def collect_results(recipe: Recipe, out: Path, stages: list[Any]) -> dict[str, Any]:
    """Everything the table and the plot show, read back from the stages' outputs."""
    store = open_store(str(out / STORE_NAME), "r")
    meta = store.meta
    teacher = _teacher(recipe, out, store)
    sort = _sorts(recipe, store)
    variants = _variants(recipe, out)
    table = _table(variants, pairs_of(recipe))
    variants = _with_stats(variants, table)
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
        "pairs": [
            {
                "variant": p.variant,
                "baseline": p.baseline,
                "seeds": list(p.seeds),
                "diffs": list(p.diffs),
                "mean": p.mean,
                "std": p.std,
                "wins": p.wins,
            }
            for p in table.pairs
        ],
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
    variants = res["variants"]
    pairs = [(p["variant"], p["baseline"]) for p in res.get("pairs", [])]
    extra = {
        v["name"]: {
            "student": v["student"],
            "loss": v["loss"],
            "logits": (v["logits"] or "-") + (f" top-{v['topk']}" if v.get("topk") else ""),
            "s / run": f"{sum(v['seconds']) / max(len(v['seconds']), 1):.1f}",
        }
        for v in variants
    }
    seeds = sorted({s for v in variants for s in v["seeds"]})
    lines += [
        "",
        format_seed_table(_table(variants, pairs), extra),
        "Test top-1 is the final epoch's on the test split; "
        f"± is the sample standard deviation over seeds {', '.join(map(str, seeds))}. "
        "Paired rows subtract the baseline's run of the same seed (same initialisation and "
        "batch order) and give the mean ± std of those differences.",
    ]
    return "\n".join(lines) + "\n"


def plot_results(res: dict[str, Any], path: Path) -> None:
    """Left: mean test top-1 per variant, error bars one standard deviation, each seed a dot.
    Right (when the recipe pairs variants): each paired difference, a dot per seed and the
    mean with its standard deviation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = res.get("pairs", [])
    fig, axes = plt.subplots(
        1, 2 if pairs else 1, figsize=(12.0 if pairs else 7.0, 4.4), squeeze=False
    )
    _plot_variants(axes[0][0], res)
    if pairs:
        _plot_pairs(axes[0][1], pairs)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_variants(ax: Axes, res: dict[str, Any]) -> None:
    variants = res["variants"]
    names = [v["name"] for v in variants]
    means = [v["mean"] for v in variants]
    stds = [v["std"] for v in variants]
    colors = {None: "#8c8c8c", "raw": "#4c72b0", "sort": "#dd8452", "swap": "#55a868"}
    ax.bar(
        range(len(names)),
        means,
        yerr=stds,
        capsize=5,
        color=[colors.get(v["logits"], "#8172b3") for v in variants],
    )
    for i, v in enumerate(variants):
        ax.plot([i] * len(v["test_top1"]), v["test_top1"], "k.", markersize=3)
        ax.text(i, v["mean"] + v["std"], f"{v['mean']:.2f}", ha="center", va="bottom", fontsize=8)
    teacher = res["teacher"]["test_top1"]
    tops = [max(v["test_top1"]) for v in variants]
    if teacher is not None:
        ax.axhline(teacher, color="black", linestyle="--", linewidth=1, label="teacher")
        ax.legend(loc="lower right")
        tops.append(teacher)
    low = min(min(v["test_top1"]) for v in variants)
    ax.set_ylim(max(0.0, low - 3.0), min(100.0, max(tops) + 2.0))
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=20, ha="right")
    ax.set_ylabel("test top-1 (%)  [axis does not start at 0]")
    seeds = max((v["n"] for v in variants), default=0)
    ax.set_title(f"{res['recipe']}: mean ± std over {seeds} seed(s)")


def _plot_pairs(ax: Axes, pairs: list[dict[str, Any]]) -> None:
    for i, p in enumerate(pairs):
        ax.plot(p["diffs"], [i] * len(p["diffs"]), "k.", markersize=4)
        ax.errorbar(p["mean"], i, xerr=p["std"], fmt="o", color="#dd8452", capsize=4)
    ax.axvline(0.0, color="black", linewidth=1)
    ax.set_yticks(range(len(pairs)))
    ax.set_yticklabels([f"{p['variant']} - {p['baseline']}" for p in pairs], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("paired Δ test top-1 (points; a dot per seed, mean ± std)")
    ax.set_title("differences, paired by seed")


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
