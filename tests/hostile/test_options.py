"""Options out of bounds, replays on another store, recipe names and ignored options (issue
21, items 4-7): each refused with exit 2 and one line, with nothing already written changed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sortkd_cache.testing import dump_and_sort, invoke, one_error_line

from .conftest import SPEC, tree_digest

TRAIN = ["train", "--student", "digits_mlp", "--epochs", "1", "--milestones", "",
         "--batch-size", "32", "--device", "cpu", "--no-progress"]  # fmt: skip
DUMP = ["dump", "--dataset", SPEC, "--teacher", "digits_mlp", "--teacher-init", "random",
        "--views", "1", "--device", "cpu", "--no-progress"]  # fmt: skip


def _recipe(tmp_path: Path, **over: str) -> Path:
    keys = {
        "name": '"r"',
        "dataset": f'"{SPEC}"',
        "students": '[{name = "kd", loss = "kd", logits = "sort"}]',
        **over,
    }
    text = "\n".join(f"{k} = {v}" for k, v in keys.items() if v)
    text += '\n[teacher]\narch = "digits_mlp"\nepochs = 1\n[dump]\nviews = 1\n'
    text += '[train]\nstudent = "digits_mlp"\nepochs = 1\nmilestones = []\n'
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


def _refused(args: list[str], watched: Path, *names: str) -> str:
    before = tree_digest(watched)
    line = one_error_line(invoke(*args), *names)
    assert tree_digest(watched) == before
    return line


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (["--seed", str(2**40)], ["--seed", "<= 4294967295", str(2**40)]),
        (["--data-seed", "-1"], ["--data-seed", ">= 0"]),
        (["--temperature", "1e300"], ["--temperature", "<= 100", "1e+300"]),
        (["--dkd-beta", "1e30", "--loss", "dkd"], ["--dkd-beta", "1e+30"]),
        (["--lr", "1e300"], ["--lr", "<= 100"]),
        (["--epochs", "1000000000"], ["--epochs", "<= 100000"]),
        (["--stream-window", "0"], ["--stream-window", ">= 1"]),
    ],
)
def test_item4_numbers_out_of_bounds_are_refused(
    store: Path, tmp_path: Path, extra: list[str], names: list[str]
) -> None:
    out = tmp_path / "run"
    _refused([*TRAIN, "--cache", str(store), "--out", str(out), *extra], store, *names)
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (["--topk", "2", "--topk-temperatures", "1e-9"], ["--topk-temperatures", "1e-09"]),
        (["--topk", "2", "--topk-temperatures", "1e300"], ["--topk-temperatures", "1e+300"]),
        (["--topk", "2", "--topk-temperatures", "nan"], ["--topk-temperatures", "nan"]),
        (["--views", str(2**40)], ["--views", "<= 65536"]),
        (["--seed", "-4"], ["--seed", ">= 0"]),
    ],
)
def test_item4_dump_numbers_out_of_bounds_are_refused(
    tmp_path: Path, extra: list[str], names: list[str]
) -> None:
    out = tmp_path / "s.zarr"
    _refused([*DUMP, "--out", str(out), *extra], tmp_path, *names)
    assert not out.exists()


def test_item4_numbers_inside_a_config_file_and_a_recipe_are_bounded(
    store: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"student": "digits_mlp", "cache": str(store), "lr": 1e308}))
    _refused(["train", "--config", str(config), "--out", str(tmp_path / "r")], tmp_path, "--lr")
    config.write_text(json.dumps({"student": "digits_mlp", "cache": str(store), "seed": -1}))
    _refused(["train", "--config", str(config), "--out", str(tmp_path / "r")], tmp_path, "--seed")
    recipe = _recipe(tmp_path)
    for key, value in (("dump.seed", "-1"), ("train.lr", "1e300"), ("seeds", "[99999999999]")):
        _refused(["run", str(recipe), "--dry-run", "--set", f"{key}={value}"], tmp_path, key)
    assert not (tmp_path / "runs").exists()
    line = _refused(["sort", str(store), "--workers", "0"], store, "--workers", ">= 1")
    assert line.endswith("got 0")


def test_item5_a_replay_on_another_store_is_refused(small_store: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c.zarr"
    shutil.copytree(small_store, cache)
    first = tmp_path / "first"
    args = [*TRAIN, "--cache", str(cache), "--out", str(first), "--logits", "sort"]
    assert invoke(*args).exit_code == 0
    other = dump_and_sort(tmp_path / "other.zarr", "fake:96:10:8", 48)
    shutil.rmtree(cache)
    shutil.copytree(other, cache)  # another store now sits at the recorded path
    replay = ["train", "--config", str(first / "config.json")]
    line = _refused([*replay, "--out", str(tmp_path / "again")], tmp_path, "--config", "store_id")
    assert "give --cache explicitly" in line and not (tmp_path / "again").exists()
    # the same store: the replay runs; --cache given: the user chose the store, it runs
    assert (
        invoke(*replay, "--out", str(tmp_path / "explicit"), "--cache", str(cache)).exit_code == 0
    )


@pytest.mark.parametrize(
    ("over", "names"),
    [
        ({"name": '"../../escaped"'}, ["name", "../../escaped"]),
        ({"name": '"a/b"'}, ["name", "a/b"]),
        ({"name": '".."'}, ["name", ".."]),
        ({"dataset": '"nosuch:1"'}, ["dataset.spec", "nosuch:1"]),
        ({"dataset": '"fake:8:2"'}, ["dataset.spec", "fake:8:2"]),
        (
            {"students": '[{name = "kd", loss = "kd", logits = "sort", topk = 4}]'},
            ["students[0].topk", "4 classes"],
        ),
        (
            {"students": '[{name = "kd", loss = "kd", logits = "swap"}]'},
            ["students[0].logits", "swap"],
        ),
        ({}, []),  # the valid recipe: shows the checks above are what refuses
    ],
)
def test_item6_recipe_names_and_dry_run_validate_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, over: dict[str, str], names: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    recipe = _recipe(tmp_path, **over)
    for extra in (["--dry-run"], []) if names else (["--dry-run"],):
        if not names:
            assert invoke("run", str(recipe), *extra).exit_code == 0
            continue
        _refused(["run", str(recipe), *extra], tmp_path, *names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.toml"]  # nothing written


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (["--loss", "ce", "--logits", "sort"], ["--logits sort", "--loss ce"]),
        (["--augment", "cifar"], ["--augment cifar", "--cache"]),
        (["--teacher-ckpt", "t.pth"], ["--teacher-ckpt t.pth", "--online-teacher"]),
        (["--teacher-init", "random"], ["--teacher-init random", "--online-teacher"]),
    ],
)
def test_item7_ignored_options_are_refused(
    store: Path, tmp_path: Path, extra: list[str], names: list[str]
) -> None:
    out = tmp_path / "run"
    _refused([*TRAIN, "--cache", str(store), "--out", str(out), *extra], store, *names)
    assert not out.exists()


def test_item7_dump_over_a_file_is_refused_with_exit_2(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    for flag in ("--overwrite", "--resume"):
        _refused([*DUMP, "--out", str(target), flag], tmp_path, str(target), "is a file")
    assert target.read_text() == "mine"
    _refused([*DUMP, "--out", str(tmp_path / "s.zarr"), "--topk-temperatures", "1,2"], tmp_path,
             "--topk-temperatures", "without --topk")  # fmt: skip
