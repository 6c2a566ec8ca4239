"""`make demo`'s recipe (digits100_demo) on a small slice, end to end, through `run`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sortkd_cache.pipelines.recipes import load_recipe
from sortkd_cache.pipelines.run import run_recipe

#: Two training images per class, one teacher epoch, two views, one student epoch, two seeds;
#: every other setting (models, lr, losses, T, the top-10 variant) is the demo's own.
SLICE = (
    "dataset=digits100:2",
    "seeds=[0, 1]",
    "teacher.epochs=1",
    "teacher.milestones=[]",
    "dump.views=2",
    "train.epochs=1",
    "train.milestones=[]",
    "train.dkd.dkd_warmup=1",
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("demo") / "out"
    report = run_recipe(
        load_recipe("digits100_demo", SLICE), out, device="cpu", progress=False, log=lambda _: None
    )
    assert report.results is not None
    return out, report.results


def test_the_demo_recipe_is_the_papers_variants() -> None:
    recipe = load_recipe("digits100_demo")
    assert recipe.dataset.spec.startswith("digits100")
    assert len(recipe.seeds) >= 5
    got = {
        (s.loss, s.logits if s.loss != "ce" else None, s.topk, s.sample, s.sample_head, s.quantize)
        for s in recipe.students
    }
    dense = [("ce", None), ("kd", "raw"), ("kd", "sort"), ("dkd", "raw"), ("dkd", "sort")]
    want = {(loss, logits, None, None, None, None) for loss, logits in dense}
    want |= {("kd", "sort", 10, None, None, None), ("kd", "sort", None, 3, 4, None)}
    want |= {("kd", "sort", None, None, None, 3)}
    assert got == want and len(recipe.students) == len(want)
    assert recipe.teacher.arch == "digits100_cnn_l" and recipe.threads == 1


def test_slice_runs_every_variant_and_seed(demo: tuple[Path, dict[str, object]]) -> None:
    out, res = demo
    variants = res["variants"]
    assert isinstance(variants, list) and len(variants) == 8
    assert all(v["n"] == 2 and v["seeds"] == [0, 1] for v in variants)
    context = res["context"]
    assert isinstance(context, dict) and context["classes"] == 100 and context["samples"] == 200
    teacher = context["teacher"]
    assert isinstance(teacher, dict) and 0.0 <= teacher["train_view_error_rate"] <= 1.0
    for name in ("report.md", "report.html", "report.json"):
        assert (out / name).stat().st_size > 0


def test_results_pair_sort_with_raw_and_kd_with_ce(demo: tuple[Path, dict[str, object]]) -> None:
    out, res = demo
    pairs = {(p["variant"], p["baseline"]): p for p in res["paired"]}  # type: ignore[attr-defined]
    assert set(pairs) == {
        ("KD raw", "CE"),
        ("KD sort", "CE"),
        ("KD sort", "KD raw"),
        ("DKD raw", "CE"),
        ("DKD sort", "CE"),
        ("DKD sort", "DKD raw"),
        ("KD sort top-10", "CE"),
        ("KD sort top-10", "KD sort"),
        ("KD sort sampled 4+3", "CE"),
        ("KD sort sampled 4+3", "KD sort"),
        ("KD sort 3-bit", "CE"),
        ("KD sort 3-bit", "KD sort"),
    }
    top1 = {v["name"]: v["test_top1"] for v in res["variants"]}  # type: ignore[attr-defined]
    sort = pairs[("KD sort", "KD raw")]
    diffs = [a - b for a, b in zip(top1["KD sort"], top1["KD raw"], strict=True)]
    assert sort["diffs"] == pytest.approx(diffs)
    table = (out / "report.md").read_text()
    assert "| KD sort - KD raw |" in table and "train-view error rate" in table
    assert json.loads((out / "report.json").read_text())["paired"] == res["paired"]
    # the conclusion: one sentence per pair, with its difference, interval and sign count
    assert len(res["conclusions"]) == len(pairs)  # type: ignore[arg-type]
    assert any(
        c.startswith("KD sort against KD raw")
        or c.startswith("KD sort beats KD raw")
        or c.startswith("KD sort loses")
        for c in res["conclusions"]
    )  # type: ignore[attr-defined]


def test_the_divergence_guard_stays_quiet_on_the_demo(demo: tuple[Path, dict[str, object]]) -> None:
    """Every student of the demo's settings finished (a tripped guard raises, exit 2)."""
    out, _ = demo
    summaries = list((out / "students").glob("*/seed*/summary.json"))
    assert len(summaries) == 16  # 8 variants x 2 seeds
