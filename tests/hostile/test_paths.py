"""Class 2: an output path that is an input; class 3 (sort): validate before creating.

``sort S --out S`` (directly, through a symlink, as ``./S/../S/``), ``train --cache S --out S``,
``copy S S/inner.zarr``, ``copy S precious.zip --overwrite``: each is refused with exit 2 and
one line, and every input (and the thing that would have been replaced) is byte-identical.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sortkd_cache.testing import invoke, one_error_line

from .conftest import tree_digest


def _spellings(store: Path, tmp_path: Path) -> dict[str, str]:
    link = tmp_path / "link.zarr"
    link.symlink_to(store)
    return {
        "same": str(store),
        "symlink": str(link),
        "dotdot": f"{store}/../{store.name}/",
        "relative": os.path.relpath(store),
    }


@pytest.mark.parametrize("spelling", ["same", "symlink", "dotdot", "relative"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_sort_out_onto_its_own_store_is_refused(
    store: Path, tmp_path: Path, spelling: str, overwrite: bool
) -> None:
    out = _spellings(store, tmp_path)[spelling]
    before = tree_digest(store)
    args = ["sort", str(store), "--out", out, "--no-progress"]
    result = invoke(*args, *(["--overwrite"] if overwrite else []))
    one_error_line(result, "--out", "is the STORE")
    assert tree_digest(store) == before


def test_sort_out_inside_or_around_its_store_is_refused(store: Path, tmp_path: Path) -> None:
    before = tree_digest(store)
    result = invoke("sort", str(store), "--out", str(store / "inner.zarr"), "--no-progress")
    one_error_line(result, "lies inside the STORE")
    result = invoke("sort", str(store), "--out", str(tmp_path), "--overwrite", "--no-progress")
    one_error_line(result, "contains the STORE")
    assert tree_digest(store) == before


def test_sort_out_overwrite_never_replaces_something_else(store: Path, tmp_path: Path) -> None:
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    before, mine = tree_digest(store), tree_digest(other)
    result = invoke("sort", str(store), "--out", str(other), "--overwrite", "--no-progress")
    one_error_line(result, "is not a sortkd-cache store")
    assert tree_digest(other) == mine and tree_digest(store) == before


def test_sort_out_with_bad_workers_creates_nothing(store: Path, tmp_path: Path) -> None:
    before = tree_digest(store)
    for workers in ("-2", "0"):
        out = tmp_path / "new.zarr"
        result = invoke("sort", str(store), "--out", str(out), "--workers", workers)
        one_error_line(result, "--workers", workers)
        assert not out.exists()
    assert tree_digest(store) == before


@pytest.mark.parametrize("overwrite", [False, True])
def test_train_out_onto_its_cache_is_refused(store: Path, overwrite: bool) -> None:
    before = tree_digest(store)
    args = ["train", "--cache", str(store), "--student", "digits_mlp", "--epochs", "1"]
    args += ["--out", str(store), "--device", "cpu", "--no-progress"]
    result = invoke(*args, *(["--overwrite"] if overwrite else []))
    one_error_line(result, "--out", "is the --cache")
    assert tree_digest(store) == before


def test_train_overwrite_never_deletes_what_is_not_a_run(store: Path, tmp_path: Path) -> None:
    other = tmp_path / "results"
    other.mkdir()
    (other / "config.json").write_text('{"student": "x"}')  # looks like a run, holds more
    (other / "paper.tex").write_text("precious")
    for target in (other, tmp_path / "other-store.zarr"):
        if target.name.endswith(".zarr"):
            import shutil

            shutil.copytree(store, target)
        before, mine = tree_digest(store), tree_digest(target)
        args = ["train", "--cache", str(store), "--student", "digits_mlp", "--epochs", "1"]
        args += ["--out", str(target), "--device", "cpu", "--no-progress", "--overwrite"]
        one_error_line(invoke(*args), "is not a training run directory")
        assert tree_digest(target) == mine and tree_digest(store) == before


@pytest.mark.parametrize("dst", ["same", "inner", "symlink", "parent"])
def test_copy_onto_or_into_its_source_is_refused(store: Path, tmp_path: Path, dst: str) -> None:
    link = tmp_path / "link.zarr"
    link.symlink_to(store)
    target = {
        "same": str(store) + "/",
        "inner": str(store / "inner.zarr"),
        "symlink": str(link / "inner.zarr"),
        "parent": str(tmp_path),
    }[dst]
    before = tree_digest(store)
    for extra in ([], ["--overwrite"]):
        result = invoke("copy", str(store), target, "--no-progress", *extra)
        one_error_line(result, "DST", "the source")
        assert tree_digest(store) == before


@pytest.mark.parametrize("name", ["precious.zip", "precious.zarr"])
def test_copy_overwrite_never_replaces_a_non_store(store: Path, tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    if name.endswith(".zip"):
        target.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: not a store
    else:
        target.mkdir()
        (target / "data.csv").write_text("1,2,3\n")
    before, mine = tree_digest(store), tree_digest(target)
    result = invoke("copy", str(store), str(target), "--overwrite", "--no-progress")
    one_error_line(result, "DST", "is not a sortkd-cache store")
    assert tree_digest(target) == mine and tree_digest(store) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["s.zarr", name])


def test_copy_overwrite_replaces_a_store(store: Path, tmp_path: Path) -> None:
    target = tmp_path / "old.zip"
    assert invoke("copy", str(store), str(target), "--no-progress").exit_code == 0
    result = invoke("copy", str(store), str(target), "--overwrite", "--no-progress")
    assert result.exit_code == 0, result.stderr


def test_dump_overwrite_never_replaces_a_non_store(tmp_path: Path) -> None:
    target = tmp_path / "photos"
    target.mkdir()
    (target / "a.png").write_bytes(b"\x89PNG")
    mine = tree_digest(target)
    args = ["dump", "--dataset", "fake:32:4:8", "--teacher", "resnet8", "--views", "1"]
    args += ["--teacher-init", "random", "--out", str(target), "--overwrite", "--no-progress"]
    one_error_line(invoke(*args), "is not a sortkd-cache store")
    assert tree_digest(target) == mine


def test_dump_out_containing_its_teacher_checkpoint_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "s.zarr"
    out.mkdir()
    ckpt = out / "teacher.safetensors"
    ckpt.write_bytes(b"weights")
    args = ["dump", "--dataset", "fake:32:4:8", "--teacher", "resnet8", "--views", "1"]
    args += ["--teacher-ckpt", str(ckpt), "--out", str(out), "--overwrite", "--no-progress"]
    one_error_line(invoke(*args), "contains the --teacher-ckpt")
    assert ckpt.read_bytes() == b"weights"


def test_outputs_module_resolves_before_comparing(tmp_path: Path) -> None:
    from sortkd_cache.errors import OutputError
    from sortkd_cache.outputs import check_disjoint

    (tmp_path / "a").mkdir()
    check_disjoint(tmp_path / "ab", [("in", tmp_path / "a")])  # a prefix, not a parent
    check_disjoint("s3://b/x2", [("in", "s3://b/x")])
    with pytest.raises(OutputError, match="lies inside"):
        check_disjoint("s3://b/x/y", [("in", "s3://b/x/")])
    with pytest.raises(OutputError, match="is the in"):
        check_disjoint(f"file://{tmp_path}/a", [("in", tmp_path / "a" / ".")])


def test_train_out_inside_its_dataset_folder_is_refused(jpeg_folder: Path, tmp_path: Path) -> None:
    import shutil

    folder = Path(shutil.copytree(jpeg_folder, tmp_path / "photos"))
    before = tree_digest(folder)
    args = ["train", "--dataset", f"imagefolder:{folder}", "--loss", "ce", "--epochs", "1"]
    args += ["--student", "digits_mlp", "--augment", "imagenet:16", "--device", "cpu"]
    args += ["--no-progress"]
    for out in (folder / "run", folder, tmp_path):
        result = invoke(*args, "--out", str(out), "--overwrite")
        one_error_line(result, "--out", "--dataset folder")
        assert tree_digest(folder) == before


@pytest.mark.parametrize("command", ["train", "dump"])
def test_data_root_for_a_dataset_without_one_is_refused(tmp_path: Path, command: str) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "keep.txt").write_text("precious")
    args = ["--dataset", "fake:32:4:8", "--data-root", str(root), "--no-progress"]
    if command == "train":
        args += ["--loss", "ce", "--student", "digits_mlp", "--epochs", "1", "--device", "cpu"]
        args += ["--out", str(root / "run")]
    else:
        args += ["--teacher", "resnet8", "--teacher-init", "random", "--views", "1"]
        args += ["--out", str(tmp_path / "s.zarr")]
    one_error_line(invoke(command, *args), "--data-root", "fake:32:4:8")
    assert sorted(p.name for p in root.iterdir()) == ["keep.txt"]
    assert not (tmp_path / "s.zarr").exists()


@pytest.mark.parametrize("command", ["train", "copy", "sort"])
def test_an_out_below_a_file_is_one_line(store: Path, tmp_path: Path, command: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("precious")
    out = str(afile / "sub" / "x")
    args = {
        "train": ["train", "--cache", str(store), "--student", "digits_mlp", "--loss", "kd",
                  "--epochs", "1", "--out", out],
        "copy": ["copy", str(store), out],
        "sort": ["sort", str(store), "--out", out],
    }[command]  # fmt: skip
    one_error_line(invoke(*args), "cannot be made", "is a file, not a directory")
    assert afile.read_text() == "precious"
