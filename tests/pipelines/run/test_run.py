"""`sortkd-cache run`: end to end, stage skipping, and invalidation of only what changed."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from sortkd_cache import open_store
from sortkd_cache.pipelines.recipes import load_recipe
from sortkd_cache.pipelines.run import RunReport, run_recipe
from sortkd_cache.testing import run_cli

TINY = """\
name = "tiny"
seeds = [0]
threads = 1

[dataset]
spec = "digits"

[teacher]
arch = "digits_mlp"
epochs = 1
milestones = []

[dump]
views = 2

[sort]
methods = ["sort"]

[train]
student = "digits_mlp"
epochs = 1
milestones = []

[[students]]
name = "KD raw"
loss = "kd"
logits = "raw"

[[students]]
name = "KD sort"
loss = "kd"
logits = "sort"
"""

STUDENTS = ["student:kd-raw:seed0", "student:kd-sort:seed0"]
ALL = ["teacher", "dump", "sort:sort", *STUDENTS]


def _run(tmp: Path, out: Path, *overrides: str, dry_run: bool = False) -> RunReport:
    path = tmp / "tiny.toml"
    if not path.exists():
        path.write_text(TINY)
    recipe = load_recipe(str(path), overrides)
    return run_recipe(
        recipe, out, device="cpu", progress=False, dry_run=dry_run, log=lambda _: None
    )


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunReport]:
    """One complete run of the tiny recipe (copied by the tests that change it)."""
    tmp = tmp_path_factory.mktemp("run")
    out = tmp / "out"
    return out, _run(tmp, out)


def _copy(done: tuple[Path, RunReport], tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(done[0], out)
    return out


def test_first_run_runs_every_stage_and_writes_results(done: tuple[Path, RunReport]) -> None:
    out, report = done
    assert report.ran() == ALL
    assert [s.reason for s in report.stages] == ["not run before"] * len(ALL)
    for name in ("report.json", "report.md", "report.html", "run-state.json", "recipe.json"):
        assert (out / name).is_file(), name
    res = json.loads((out / "report.json").read_text())
    store = open_store(str(out / "store.zarr"))
    acc = np.mean(store.meta.teacher_accuracy)
    ctx = res["context"]
    assert ctx["teacher"]["train_view_error_rate"] == pytest.approx(1 - acc)
    changed = sum(store.kind_attrs("sort")["stats"]["changed_rows"])
    assert ctx["sort"]["sort"]["changed_rows"] == changed
    assert ctx["sort"]["sort"]["total_rows"] == store.num_samples * 2
    names = [v["name"] for v in res["variants"]]
    assert names == ["KD raw", "KD sort"]
    kd_sort = res["variants"][1]
    summary = json.loads((out / "students/kd-sort/seed0/summary.json").read_text())
    assert kd_sort["test_top1"] == [summary["final_test_top1"]]
    assert kd_sort["n"] == 1 and kd_sort["std"] == 0.0
    (pair,) = res["paired"]
    assert (pair["variant"], pair["baseline"]) == ("KD sort", "KD raw")
    assert pair["mean"] == pytest.approx(kd_sort["mean"] - res["variants"][0]["mean"])
    assert ctx["timing"]["dump_seconds"] == pytest.approx(store.meta.dump_seconds)
    assert ctx["timing"]["student_runs"] == 2
    table = (out / "report.md").read_text()
    assert table == report.table
    assert "| KD sort | 0 |" in table
    assert "train-view error rate" in table and "teacher inference (dump)" in table
    # `sortkd-cache report OUT` rebuilds exactly the report `run` wrote
    from sortkd_cache.pipelines.report import report as report_of

    assert report_of([str(out)], None)[0] == json.loads(json.dumps(report.results))


def test_second_run_does_no_stage_twice(done: tuple[Path, RunReport], tmp_path: Path) -> None:
    out = _copy(done, tmp_path)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("summary.json")}
    report = _run(tmp_path, out)
    assert report.ran() == []
    assert {s.action for s in report.stages} == {"skipped"}
    assert {p: p.stat().st_mtime_ns for p in out.rglob("summary.json")} == before
    assert report.table == done[1].table.replace(str(done[0]), str(out))


def test_dry_run_plans_without_writing(done: tuple[Path, RunReport], tmp_path: Path) -> None:
    out = _copy(done, tmp_path)
    state = (out / "run-state.json").read_text()
    report = _run(tmp_path, out, "dump.views=3", dry_run=True)
    assert report.ran() == ["dump", "sort:sort", *STUDENTS]
    assert report.stages[0].action == "would skip"
    assert report.stages[1].reason == "changed: views 2 -> 3"
    assert report.results is None
    assert (out / "run-state.json").read_text() == state
    fresh = _run(tmp_path, tmp_path / "fresh", dry_run=True)
    assert fresh.ran() == ALL and not (tmp_path / "fresh").exists()


def test_changed_student_field_reruns_only_students(
    done: tuple[Path, RunReport], tmp_path: Path
) -> None:
    out = _copy(done, tmp_path)
    report = _run(tmp_path, out, "train.lr=0.02")
    assert report.ran() == STUDENTS
    assert all("lr 0.05 -> 0.02" in s.reason for s in report.stages if s.action == "ran")
    config = json.loads((out / "students/kd-raw/seed0/config.json").read_text())
    assert config["lr"] == 0.02


def test_changed_views_reruns_dump_sort_students_not_teacher(
    done: tuple[Path, RunReport], tmp_path: Path
) -> None:
    out = _copy(done, tmp_path)
    teacher_mtime = (out / "teacher/model.safetensors").stat().st_mtime_ns
    report = _run(tmp_path, out, "dump.views=3")
    assert report.ran() == ["dump", "sort:sort", *STUDENTS]
    reasons = {s.stage: s.reason for s in report.stages}
    assert reasons["dump"] == "changed: views 2 -> 3"
    assert reasons["sort:sort"] == "changed: dump output changed"
    assert (out / "teacher/model.safetensors").stat().st_mtime_ns == teacher_mtime
    assert open_store(str(out / "store.zarr")).num_views == 3
    assert _run(tmp_path, out, "dump.views=3").ran() == []


def test_changed_teacher_reruns_everything(done: tuple[Path, RunReport], tmp_path: Path) -> None:
    out = _copy(done, tmp_path)
    assert _run(tmp_path, out, "teacher.lr=0.1").ran() == ALL


def test_missing_output_reruns_that_stage_only(
    done: tuple[Path, RunReport], tmp_path: Path
) -> None:
    out = _copy(done, tmp_path)
    shutil.rmtree(out / "students/kd-sort/seed0")
    report = _run(tmp_path, out)
    assert report.ran() == ["student:kd-sort:seed0"]
    assert report.stages[-1].reason == "output missing or incomplete"


def test_added_variant_and_seed_run_alone(done: tuple[Path, RunReport], tmp_path: Path) -> None:
    out = _copy(done, tmp_path)
    (tmp_path / "tiny.toml").write_text(
        TINY.replace("seeds = [0]", "seeds = [0, 1]")
        + '\n[[students]]\nname = "CE only"\nloss = "ce"\nseeds = [0]\n'
    )
    report = _run(tmp_path, out)
    assert report.ran() == [
        "student:kd-raw:seed1",
        "student:kd-sort:seed1",
        "student:ce-only:seed0",
    ]
    res = report.results
    assert res is not None
    assert [(v["name"], v["n"]) for v in res["variants"]] == [
        ("KD raw", 2),
        ("KD sort", 2),
        ("CE only", 1),
    ]
    assert "logits" not in res["variants"][2]["options"]  # a CE run reads no logits kind


def test_without_data_seed_each_seed_is_its_own_pass(
    done: tuple[Path, RunReport], tmp_path: Path
) -> None:
    """A recipe that sets no data_seed keeps its stage configurations (no rerun of a finished
    run) and trains one pass per seed, each seed its own data order, as before data_seed."""
    out = _copy(done, tmp_path)
    state = json.loads((out / "run-state.json").read_text())
    assert all("data_seed" not in state["stages"][s]["config"] for s in STUDENTS)
    (tmp_path / "tiny.toml").write_text(TINY.replace("seeds = [0]", "seeds = [0, 1]"))
    report = _run(tmp_path, out)
    assert report.ran() == ["student:kd-raw:seed1", "student:kd-sort:seed1"]
    members = json.loads((out / "sweeps/pass0/summary.json").read_text())["members"]
    assert sorted(members) == ["kd-raw-seed1", "kd-sort-seed1"]
    assert not (out / "sweeps/pass1").exists()


def test_a_data_seed_trains_every_seed_in_one_pass(tmp_path: Path) -> None:
    """With ``data_seed`` every seed (and CE, which reads no soft labels) shares one data
    order, so all the students train in one sweep; each equals its solo run's config."""
    recipe = TINY.replace("seeds = [0]", "seeds = [0, 1]").replace(
        "milestones = []\n\n[[students]]", "milestones = []\ndata_seed = 3\n\n[[students]]"
    )
    (tmp_path / "tiny.toml").write_text(recipe + '\n[[students]]\nname = "CE"\nloss = "ce"\n')
    out = tmp_path / "out"
    report = _run(tmp_path, out)
    assert report.ran()[3:] == [
        f"student:{v}:seed{k}" for v in ("kd-raw", "kd-sort", "ce") for k in (0, 1)
    ]
    assert sorted(p.name for p in (out / "sweeps").iterdir()) == ["pass0"]
    summary = json.loads((out / "sweeps/pass0/summary.json").read_text())
    assert len(summary["members"]) == 6
    assert all(m["status"] == "finished" for m in summary["members"].values())
    for k in (0, 1):
        config = json.loads((out / f"students/ce/seed{k}/config.json").read_text())
        assert (config["seed"], config["data_seed"]) == (k, 3)
    state = json.loads((out / "run-state.json").read_text())
    assert state["stages"]["student:kd-raw:seed1"]["config"]["data_seed"] == 3


def test_missing_teacher_checkpoint_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "ck.toml"
    path.write_text(
        TINY.replace("epochs = 1\nmilestones = []\n\n[dump]", 'checkpoint = "nope.pth"\n[dump]')
    )
    from sortkd_cache.errors import CheckpointError

    with pytest.raises(
        CheckpointError, match=r"ck\.toml: teacher\.checkpoint 'nope.pth' not found"
    ):
        run_recipe(load_recipe(str(path)), tmp_path / "o", device="cpu", dry_run=True)


def test_cli_runs_the_shrunk_demo_recipe(tmp_path: Path) -> None:
    """`make demo`'s recipe, shrunk with --set, end to end through the console script."""
    out = tmp_path / "demo"
    shrink = [
        "--set=seeds=[0]",
        "--set=teacher.arch=digits_mlp",
        "--set=teacher.epochs=1",
        "--set=dump.views=2",
        "--set=train.epochs=1",
        "--set=train.milestones=[]",
    ]
    proc = run_cli("run", "digits_demo", "--out", str(out), "--device", "cpu", *shrink)
    assert proc.returncode == 0, proc.stderr
    assert "| variant |" in proc.stdout and "| KD sort | 0 |" in proc.stdout
    assert "| DKD sort |" in proc.stdout and "train-view error rate" in proc.stdout
    # one line per stage on stderr: the students of a pass in one line
    stages = [line for line in proc.stderr.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] + "]" for line in stages] == [
        "[teacher]", "[dump]", "[sort:sort]", "[sort:swap]", "[students pass0]"
    ]  # fmt: skip
    n = len(load_recipe("digits_demo").students)
    assert f"] {n} ran in one sweep: not run before (" in stages[-1]
    assert "[student" not in proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1].startswith("written: ")
    assert "## Conclusion" in proc.stdout
    res = json.loads((out / "report.json").read_text())
    assert len(res["variants"]) == len(load_recipe("digits_demo").students)


def test_teacher_checkpoint_is_hashed_not_trained(
    done: tuple[Path, RunReport], tmp_path: Path
) -> None:
    """The same weights given as a checkpoint leave the dump valid; other weights redo it."""
    out = _copy(done, tmp_path)
    weights = tmp_path / "teacher.safetensors"
    shutil.copy(out / "teacher/model.safetensors", weights)
    text = TINY.replace(
        "epochs = 1\nmilestones = []\n\n[dump]", f'checkpoint = "{weights}"\n\n[dump]'
    )
    (tmp_path / "tiny.toml").write_text(text)
    report = _run(tmp_path, out)
    assert report.ran() == []
    assert report.stages[0].reason == "weights from checkpoint teacher.safetensors"
    res = report.results
    assert res is not None and res["context"]["teacher"]["test_top1"] is None
    assert "teacher digits_mlp: train-view error rate" in report.table
    other = tmp_path / "other" / "teacher.safetensors"
    other.parent.mkdir()
    shutil.copy(done[0] / "students/kd-raw/seed0/model.safetensors", other)
    (tmp_path / "tiny.toml").write_text(text.replace(str(weights), str(other)))
    report = _run(tmp_path, out)
    assert report.ran() == ["dump", "sort:sort", *STUDENTS]
    assert report.stages[1].reason == "changed: teacher output changed"


def test_interrupted_stage_resumes(done: tuple[Path, RunReport], tmp_path: Path) -> None:
    out = _copy(done, tmp_path)
    run_dir = out / "students/kd-raw/seed0"
    (run_dir / "summary.json").unlink()  # as if killed after its last checkpoint
    state_path = out / "run-state.json"
    state = json.loads(state_path.read_text())
    state["stages"]["student:kd-raw:seed0"]["status"] = "started"
    state_path.write_text(json.dumps(state))
    metrics = (run_dir / "metrics.jsonl").read_text()
    report = _run(tmp_path, out)
    assert report.ran() == ["student:kd-raw:seed0"]
    assert report.stages[-2].reason == "resuming an interrupted run"
    assert (run_dir / "summary.json").is_file()
    assert (run_dir / "metrics.jsonl").read_text() == metrics  # resumed, not retrained


def test_sparse_recipe_dumps_top_k_and_students_take_topk_and_tail(
    done: tuple[Path, RunReport], tmp_path: Path
) -> None:
    """dump.topk makes the run's store sparse (dump, sort and students rerun, the teacher
    not); a student's topk must match it and its sparse_tail reaches train."""
    out = _copy(done, tmp_path)
    report = _run(tmp_path, out, "dump.topk=3", "train.sparse_tail=bucket")
    assert report.ran() == ["dump", "sort:sort", *STUDENTS]
    assert {s.stage: s.reason for s in report.stages}["dump"] == "changed: topk null -> 3"
    assert open_store(str(out / "store.zarr")).sparse_spec.k == 3
    config = json.loads((out / "students/kd-sort/seed0/config.json").read_text())
    assert config["sparse_tail"] == "bucket" and config["resolved"]["sparse_tail"] == "bucket"
    # unset again: the dense dump reruns; the unset keys leave the other stages' hash alone
    assert _run(tmp_path, out).ran() == ["dump", "sort:sort", *STUDENTS]
    assert _run(tmp_path, out).ran() == []


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("dump.topk=0", "key 'dump.topk' must be an integer >= 1, got 0"),
        ("train.topk=-2", "key 'train.topk' must be an integer >= 1, got -2"),
        ("train.sparse_tail='wide'", "unknown key 'train.sparse_tail' 'wide'"),
        (
            "students=[{name='ce', loss='ce', topk=3}]",
            "key 'students[0].topk' 3 does nothing with key 'students[0].loss' ce",
        ),
    ],
)
def test_sparse_recipe_keys_are_checked(tmp_path: Path, override: str, needle: str) -> None:
    from sortkd_cache.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(needle)):
        _run(tmp_path, tmp_path / "out", override, dry_run=True)
