"""Issue 28 items 3-4: a store finds its data and its teacher from any directory.

The probes: a store made from ``imagefolder:tiny`` (a relative path) could not be checked or
trained on from another directory; ``verify --recompute`` ignored ``--dataset``; and it asked
for ``--teacher-ckpt`` although the store's own checkpoint was still where it was made.
Now a store records the folder's absolute path and the weights file's (older stores read as
before: the folder name in the working directory), ``--dataset`` wins, and a folder found
nowhere is one line (exit 2) naming ``--dataset imagefolder:PATH``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from sortkd_cache.testing import invoke, one_error_line

from .conftest import edit_json, tree_digest

DUMP = ["--teacher", "resnet8", "--views", "2", "--augment", "imagenet:16", "--seed", "0",
        "--chunk-samples", "16", "--device", "cpu", "--no-progress"]  # fmt: skip


@pytest.fixture
def folder_store(
    jpeg_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Path]:
    """(store, teacher checkpoint), dumped from ``tmp_path/made`` with relative paths."""
    from sortkd_cache.checkpoint import save_weights
    from sortkd_cache.models import create_model

    torch.set_num_threads(1)
    made = tmp_path / "made"
    shutil.copytree(jpeg_folder, made / "tiny")
    torch.manual_seed(0)
    save_weights(create_model("resnet8", num_classes=3, in_chans=3), made / "t.safetensors")
    monkeypatch.chdir(made)
    args = ["--dataset", "imagefolder:tiny", "--teacher-ckpt", "t.safetensors"]
    result = invoke("dump", *DUMP, *args, "--out", "s.zarr")
    assert result.exit_code == 0, result.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return made / "s.zarr", made / "t.safetensors"


def test_the_store_records_where_its_data_and_teacher_were(folder_store: tuple[Path, Path]):
    store, ckpt = folder_store
    record = json.loads((store / "zarr.json").read_text())["attributes"]["sortkd_cache"]
    assert record["dataset"]["spec"] == "imagefolder:tiny"  # the identity: the name only
    assert record["dataset"]["location"] == str(store.parent / "tiny")
    assert record["teacher"]["checkpoint"] == "t.safetensors"
    assert record["teacher"]["path"] == str(ckpt)


def test_recompute_and_train_work_from_another_directory(
    folder_store: tuple[Path, Path], tmp_path: Path
) -> None:
    store, _ = folder_store
    before = tree_digest(store)
    result = invoke("verify", str(store), "--recompute", "4", "--no-progress")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "recompute  4 sample-views" in result.stdout and ": OK" in result.stdout
    train = ["train", "--cache", str(store), "--student", "resnet8", "--epochs", "1",
             "--logits", "raw", "--out", str(tmp_path / "run"), "--device", "cpu",
             "--batch-size", "8", "--no-progress"]  # fmt: skip
    result = invoke(*train)
    assert result.exit_code == 0, result.stderr
    assert tree_digest(store) == before


def test_a_moved_folder_is_one_line_saying_how_to_give_it(
    folder_store: tuple[Path, Path], tmp_path: Path
) -> None:
    store, _ = folder_store
    moved = tmp_path / "moved"
    (store.parent / "tiny").rename(moved)
    result = invoke("verify", str(store), "--recompute", "2")
    one_error_line(result, str(store.parent / "tiny"), "--dataset imagefolder:PATH")
    train = ["train", "--cache", str(store), "--student", "resnet8", "--epochs", "1",
             "--out", str(tmp_path / "run"), "--device", "cpu"]  # fmt: skip
    one_error_line(invoke(*train), "--dataset imagefolder:PATH")
    assert not (tmp_path / "run").exists()
    # --dataset is honoured (it was ignored by --recompute)
    given = ["--dataset", f"imagefolder:{moved}", "--no-progress"]
    result = invoke("verify", str(store), "--recompute", "3", *given)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "dataset fingerprint matches" in result.stdout and ": OK" in result.stdout


def test_a_store_that_recorded_no_location_reads_as_before(
    folder_store: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older record (no location, no path): the folder name and the checkpoint name in
    the working directory, then the checkpoint beside the store."""

    def older(doc: dict) -> None:
        record = doc["attributes"]["sortkd_cache"]
        del record["dataset"]["location"], record["teacher"]["path"]

    store, _ = folder_store
    edit_json(store / "zarr.json", older, reseal=True)
    one_error_line(invoke("verify", str(store), "--recompute", "2"), "'tiny'", "--dataset")
    monkeypatch.chdir(store.parent)
    result = invoke("verify", str(store), "--recompute", "2", "--no-progress")
    assert result.exit_code == 0, result.stdout + result.stderr


def test_the_recorded_checkpoint_is_used_only_with_its_sha256(
    folder_store: tuple[Path, Path],
) -> None:
    from sortkd_cache.checkpoint import save_weights
    from sortkd_cache.models import create_model

    store, ckpt = folder_store
    torch.manual_seed(1)
    save_weights(create_model("resnet8", num_classes=3, in_chans=3), ckpt)  # other weights
    result = invoke("verify", str(store), "--recompute", "2")
    one_error_line(result, str(ckpt), "other weights", "--teacher-ckpt")
