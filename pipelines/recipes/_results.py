"""A recipe output's own context for its report: the teacher, the sort, where the time went.

Read back from ``sortkd-cache run``'s output OUT (``recipe.json``, the store, the teacher's
run and ``run-state.json``), so that ``report OUT`` shows what ``run`` showed: the teacher's
test top-1 and its error rate on the stored training views (1 - mean accuracy over the N x V
sample-views), how many rows each sort method changed, and teacher inference (the dump)
against student training. The results table itself is the report's (``report``).

The online-KD estimate assumes one teacher pass shared by every student that sees the same
batches (one data order: ``data_seed``, else each seed its own order), as a sweep would run
it: the dump's forward time per view x the epochs of each distinct data order.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sortkd_cache.errors import SortKDError
from sortkd_cache.pipelines.recipes._recipe import Recipe
from sortkd_cache.pipelines.recipes._state import STORE_NAME, RunState, student_dir
from sortkd_cache.store import open_store

if TYPE_CHECKING:
    from sortkd_cache.store import CacheStore

__all__ = ["context_lines", "recipe_context"]


def _read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _teacher(recipe: Recipe, out: Path, store: CacheStore) -> dict[str, Any]:
    """The teacher's test top-1 (when trained here) and its error rate on the stored views."""
    acc = list(store.meta.teacher_accuracy)
    view_acc = sum(acc) / len(acc) if acc else math.nan
    total_rows = store.num_samples * store.num_views
    teacher: dict[str, Any] = {"arch": recipe.teacher.arch, "checkpoint": recipe.teacher.checkpoint}
    summary = out / "teacher" / "summary.json"
    if recipe.teacher.checkpoint is None and summary.is_file():
        s = _read_json(summary)
        teacher.update(test_top1=s["final_test_top1"], train_seconds=s["seconds"])
    else:
        teacher.update(test_top1=None, train_seconds=None)
    teacher.update(
        train_view_error_rate=1.0 - view_acc if acc else None,
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


def _student_seconds(recipe: Recipe, out: Path) -> tuple[float, int]:
    seconds, runs = 0.0, 0
    for spec in recipe.students:
        for seed in spec.seeds:
            path = student_dir(out, spec, seed) / "summary.json"
            if path.is_file():
                seconds += float(_read_json(path)["seconds"])
                runs += 1
    return seconds, runs


def _shared_epochs(recipe: Recipe) -> int:
    """Epochs of teacher forwards in one shared pass per data order of the KD students."""
    orders: dict[int, int] = {}
    for spec in recipe.students:
        if spec.loss == "ce":
            continue
        data_seed = spec.train_params().get("data_seed")
        for seed in spec.seeds:
            order = seed if data_seed is None else int(data_seed)
            orders[order] = max(orders.get(order, 0), int(spec.epochs))
    return sum(orders.values())


def recipe_context(out: Path) -> dict[str, Any] | None:
    """The context of the recipe output ``out`` (None when its store is not there)."""
    recipe = Recipe.from_dict(_read_json(out / "recipe.json"), str(out / "recipe.json"))
    try:
        store = open_store(str(out / STORE_NAME), "r")
    except SortKDError:
        return None
    meta = store.meta
    dump_rec = RunState(out).get("dump") or {}
    forward = dump_rec.get("result", {}).get("forward_seconds", meta.dump_seconds)
    epochs = _shared_epochs(recipe)
    student, runs = _student_seconds(recipe, out)
    teacher = _teacher(recipe, out, store)
    sort = _sorts(recipe, store)
    return {
        "recipe": recipe.name, "dataset": recipe.dataset.spec, "samples": store.num_samples,
        "views": store.num_views, "classes": store.num_classes, "teacher": teacher,
        "sort": sort,
        "timing": {
            "teacher_train_seconds": teacher["train_seconds"],
            "dump_seconds": meta.dump_seconds,
            "sort_seconds": sum(s["seconds"] or 0.0 for s in sort.values()),
            "student_train_seconds": student, "student_runs": runs,
            "teacher_forward_seconds": forward, "online_shared_epochs": epochs,
            "online_teacher_estimate_seconds": (
                forward / store.num_views * epochs if forward is not None and epochs else None
            ),
        },
    }  # fmt: skip


def _fmt(x: float | None, spec: str = ".1f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _teacher_line(ctx: dict[str, Any]) -> str:
    t = ctx["teacher"]
    rows = ctx["samples"] * ctx["views"]
    test = f"test top-1 {_fmt(t['test_top1'], '.2f')}%, " if t["test_top1"] is not None else ""
    errors = f" ({t['train_view_errors']} of {rows} sample-views)" if t["train_view_errors"] else ""
    rate = t["train_view_error_rate"]
    return (
        f"teacher {t['arch']}: {test}train-view error rate "
        f"{_fmt(None if rate is None else 100 * rate, '.2f')}%{errors}"
    )


def context_lines(ctx: dict[str, Any]) -> list[str]:
    """The context as plain lines (a Markdown list's items)."""
    tm = ctx["timing"]
    lines = [
        f"{ctx['recipe']}: {ctx['dataset']}, {ctx['samples']} samples x {ctx['views']} views, "
        f"{ctx['classes']} classes",
        _teacher_line(ctx),
    ]
    for method, s in ctx["sort"].items():
        lines.append(
            f"{method} changed {s['changed_rows']} of {s['total_rows']} rows "
            f"({100 * s['changed_fraction']:.2f}%)"
        )
    runs = max(tm["student_runs"], 1)
    teach = tm["teacher_train_seconds"]
    lines.append(
        f"time: teacher inference (dump) {_fmt(tm['dump_seconds'])} s vs student training "
        f"{_fmt(tm['student_train_seconds'])} s ({tm['student_runs']} runs, "
        f"{_fmt(tm['student_train_seconds'] / runs)} s each)"
        + (f"; teacher training {_fmt(teach)} s" if teach is not None else "")
        + f"; sort {_fmt(tm['sort_seconds'])} s"
    )
    if tm["online_teacher_estimate_seconds"] is not None:
        lines.append(
            f"online KD with one teacher pass shared by the students of a data order would "
            f"spend about {_fmt(tm['online_teacher_estimate_seconds'])} s on teacher forwards "
            f"(the dump's {_fmt(tm['teacher_forward_seconds'])} s / {ctx['views']} views x "
            f"{tm['online_shared_epochs']} epochs)"
        )
    return lines
