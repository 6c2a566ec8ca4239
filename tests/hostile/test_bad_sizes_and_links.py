"""Issue 28, items 2, 5 and 7: image folders that cannot multiply or relabel data, sizes
bounded before anything is written, and every listed bad input one line with exit 2.

Each test runs the probe's reproducer; nothing may be written (no store, no run directory)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from sortkd_cache.runtime import MAX_THREADS
from sortkd_cache.testing import invoke, one_error_line

from .conftest import tree_digest

DUMP = ["dump", "--teacher", "digits_cnn_l", "--teacher-init", "random", "--views", "1",
        "--device", "cpu", "--no-progress"]  # fmt: skip


def _images(folder: Path, per_class: int = 6) -> Path:
    """``folder/a`` and ``folder/b``, ``per_class`` distinct 8x8 PNGs each."""
    from PIL import Image

    for k, name in enumerate("ab"):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((8, 8, 3), 20 * i + 120 * k, dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i}.png")
    return folder


def _dump_refused(folder: Path, tmp_path: Path, *names: str) -> str:
    out = tmp_path / "s.zarr"
    before = tree_digest(folder)
    line = one_error_line(
        invoke(*DUMP, "--dataset", f"imagefolder:{folder}", "--augment", "imagenet:8",
               "--out", str(out)),
        *names,
    )  # fmt: skip
    assert not out.exists() and tree_digest(folder) == before
    return line


# -- item 2: image folders cannot multiply or relabel data ------------------------------------


def test_item2_a_symlink_loop_is_refused(tmp_path: Path) -> None:
    """The probe: 12 images, ``a/loop -> ..``; followed, it made hundreds of samples, most
    of class b labelled a, exit 0."""
    folder = _images(tmp_path / "pets")
    os.symlink("..", folder / "a" / "loop")
    line = _dump_refused(folder, tmp_path, "loop", "inside the image folder")
    assert "a/loop" in line


def test_item2_a_class_folder_linked_to_another_class_is_refused(tmp_path: Path) -> None:
    folder = _images(tmp_path / "pets")
    os.symlink("a", folder / "c")  # class c would be class a's images relabelled
    _dump_refused(folder, tmp_path, "/c", "inside the image folder")


def test_item2_a_second_path_to_one_image_is_refused(tmp_path: Path) -> None:
    folder = _images(tmp_path / "pets")
    os.symlink("../b/0.png", folder / "a" / "z.png")  # b's image labelled a
    _dump_refused(folder, tmp_path, "z.png", "b/0.png", "same file")


def test_item2_links_outside_the_folder_give_exactly_the_real_images(tmp_path: Path) -> None:
    """As docs/datasets.md states: a class folder kept elsewhere is followed, once."""
    from sortkd_cache.datasets import load_dataset

    elsewhere = _images(tmp_path / "disk2")
    folder = tmp_path / "pets"
    folder.mkdir()
    os.symlink(elsewhere / "a", folder / "a")
    (folder / "b").mkdir()
    os.symlink(elsewhere / "b", folder / "b" / "more")
    ds = load_dataset(f"imagefolder:{folder}")
    assert len(ds) == 12 and ds.labels.tolist() == [0] * 6 + [1] * 6
    assert sorted(os.path.realpath(f) for f in ds.files) == sorted(
        str(p.resolve()) for p in elsewhere.rglob("*.png")
    )


# -- item 5: sizes bounded before anything is written -----------------------------------------


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (["--dataset", "fake:100:99999999999:8"], ["--dataset", "fake:100:99999999999:8"]),
        (["--dataset", "fake:100000:10:2000"], ["--dataset", "4 GiB"]),
        (["--dataset", "digits", "--augment", "imagenet:99999"], ["--augment", "99999"]),
        (["--dataset", "digits", "--teacher-size", "99999"], ["--teacher-size", "99999"]),
        (["--dataset", "digits", "--teacher-size", "1"], ["--teacher-size 1", "1x1"]),
        (["--dataset", "digits", "--augment", "imagenet:1"], ["--augment imagenet:1", "1x1"]),
    ],
)
def test_item5_sizes_are_bounded_before_a_store_is_made(
    tmp_path: Path, extra: list[str], names: list[str]
) -> None:
    out = tmp_path / "s.zarr"
    one_error_line(invoke(*DUMP, *extra, "--out", str(out)), *names)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def _recipe(tmp_path: Path, spec: str = "digits", threads: int = 1) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(
        f'name = "r"\nthreads = {threads}\ndataset = "{spec}"\n'
        '[teacher]\narch = "digits_mlp"\nepochs = 1\n[dump]\nviews = 1\n'
        '[train]\nstudent = "digits_mlp"\nepochs = 1\nmilestones = []\n'
        '[[students]]\nname = "kd"\nloss = "kd"\n'
    )
    return path


@pytest.mark.parametrize("threads", [0, MAX_THREADS + 1, 99999999999])  # one bound, as --threads
def test_item5_a_recipes_threads_are_bounded(tmp_path: Path, threads: int) -> None:
    recipe, out = _recipe(tmp_path, threads=threads), tmp_path / "out"
    one_error_line(invoke("run", str(recipe), "--out", str(out), "--dry-run"), "threads")
    assert not out.exists()


def test_item5_a_dry_run_sets_no_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    calls: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    recipe, out = _recipe(tmp_path, threads=7), tmp_path / "out"
    result = invoke("run", str(recipe), "--out", str(out), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "would run" in result.stdout and calls == [] and not out.exists()


@pytest.mark.parametrize(
    ("extra", "name"), [(["--threads", "2"], "threads"), (["--device", "cpu"], "device")]
)
def test_a_dry_runs_device_or_threads_is_refused(
    tmp_path: Path, extra: list[str], name: str
) -> None:
    """A plan computes nothing: a device or a thread count given with --dry-run is exit 2."""
    recipe, out = _recipe(tmp_path), tmp_path / "out"
    line = one_error_line(invoke("run", str(recipe), "--out", str(out), "--dry-run", *extra), name)
    assert "--dry-run" in line and not out.exists()


# -- item 7: every listed bad input is one line, exit 2 ---------------------------------------


def test_item7_each_listed_bad_input_is_one_line_exit_2(store: Path, tmp_path: Path) -> None:
    """The probe's list (each exit 1 before), plus click's usage errors (three lines before)."""
    selfref = _images(tmp_path / "selfref")
    os.symlink("self", selfref / "a" / "self")
    config = tmp_path / "hot.json"
    config.write_text(json.dumps({"student": "digits_mlp", "loss": "kd", "loss_options": "hot"}))
    out = tmp_path / "out"
    cases = {
        "verify --recompute --seed -1": (
            ["verify", str(store), "--recompute", "--seed", "-1"], ["'-1'", "verify --help"]),
        "verify --recompute 4 --seed -1": (
            ["verify", str(store), "--recompute", "4", "--seed", "-1"], ["--seed", "-1"]),
        "dump fake:100:99999999999:8": (
            [*DUMP, "--dataset", "fake:100:99999999999:8", "--out", str(out)], ["--dataset"]),
        "self-referencing symlink": (
            [*DUMP, "--dataset", f"imagefolder:{selfref}", "--augment", "imagenet:8", "--out",
             str(out)], ["a/self", "looping symlink"]),
        "--teacher-size 1": (
            [*DUMP, "--dataset", "digits", "--teacher-size", "1", "--out", str(out)],
            ["--teacher-size 1"]),
        "loss_options hot": (
            ["train", "--config", str(config), "--cache", str(store), "--out", str(out)],
            ["loss_options", "'hot'"]),
        "run --dry-run missing folder": (
            ["run", str(_recipe(tmp_path, spec=f"imagefolder:{tmp_path / 'nowhere'}")),
             "--out", str(out), "--dry-run"], ["dataset.spec", "no such directory"]),
        "unknown option": (["train", "--lossx", "kd"], ["--lossx", "train --help"]),
        "missing argument": (["verify"], ["STORE", "verify --help"]),
    }  # fmt: skip
    before = tree_digest(store)
    for what, (args, names) in cases.items():
        result = invoke(*args)
        assert result.exit_code == 2, (what, result.exit_code, result.stderr)
        one_error_line(result, *names)
        assert not out.exists(), what
    assert tree_digest(store) == before
