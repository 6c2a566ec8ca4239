"""``verify --recompute N`` (issue 24): honest stores pass, dense and sparse; a store whose
logits came from other weights than its record names, or whose row was edited with its
checksum recomputed, fails naming the rows; weights that are not the store's are refused."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import Result

from sortkd_cache.checkpoint import file_sha256, save_weights
from sortkd_cache.store import open_store
from sortkd_cache.testing import invoke

timm = pytest.importorskip("timm")

TEACHER = "timm:test_resnet"
DUMP = ["--dataset", "fake:12:10:16", "--views", "2", "--chunk-samples", "4", "--device", "cpu",
        "--teacher-size", "32", "--teacher", TEACHER]  # fmt: skip


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.set_num_threads(1)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))


@pytest.fixture
def weights(tmp_path: Path) -> tuple[Path, Path]:
    """Two checkpoints of the same architecture with different (random) weights."""
    out = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        path = tmp_path / f"w{seed}.safetensors"
        save_weights(timm.create_model("test_resnet", num_classes=10), path)
        out.append(path)
    return out[0], out[1]


def dumped(tmp_path: Path, ckpt: Path, *extra: str, name: str = "s.zarr") -> Path:
    out = tmp_path / name
    result = invoke("dump", *DUMP, "--teacher-ckpt", str(ckpt), "--out", str(out), *extra)
    assert result.exit_code == 0, result.stderr
    return out


def recompute(store: Path, n: int, *extra: str) -> Result:
    return invoke("verify", str(store), "--recompute", str(n), "--json", *extra)


LAYOUTS = [[], ["--topk", "3"], ["--quantize", "3"]]


@pytest.mark.parametrize("layout", LAYOUTS, ids=["dense", "sparse", "quant"])
def test_an_honest_store_passes(tmp_path: Path, weights: tuple[Path, Path], layout: list[str]):
    store = dumped(tmp_path, weights[0], *layout)
    result = recompute(store, 7, "--teacher-ckpt", str(weights[0]))
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)["recompute"]
    assert report["ok"] and report["checked"] == 7
    assert report["max_diff"] <= report["tolerance"] == 2e-3  # float16 storage, fp32 forward
    text = invoke("verify", str(store), "--recompute", "3", "--teacher-ckpt", str(weights[0]))
    assert "recompute  3 sample-views" in text.stdout and ": OK" in text.stdout


def test_picks_are_seeded_and_spread_over_views_and_chunks(
    tmp_path: Path, weights: tuple[Path, Path]
) -> None:
    from sortkd_cache.pipelines.verify._recompute import _pick

    store = open_store(str(dumped(tmp_path, weights[0])))
    picks = _pick(store, 6, seed=3)
    assert picks == _pick(store, 6, seed=3) and picks != _pick(store, 6, seed=4)
    assert len(set(picks)) == 6
    assert {i // 4 for i, _ in picks} == {0, 1, 2} and {v for _, v in picks} == {0, 1}
    assert len(_pick(store, 100, seed=0)) == 24  # every sample-view


def test_logits_of_other_weights_than_the_record_fail_naming_the_rows(
    tmp_path: Path, weights: tuple[Path, Path]
) -> None:
    """Dumped with w1, its record rewritten (checksum resealed) to claim w0: every row
    differs."""
    store = dumped(tmp_path, weights[1])
    writable = open_store(str(store), "r+")
    meta = writable.meta
    teacher = dataclasses.replace(meta.teacher, sha256=file_sha256(weights[0]))
    writable.write_meta(meta.replace(teacher=teacher))
    assert invoke("verify", str(store)).exit_code == 0  # sound as a store
    result = recompute(store, 24, "--teacher-ckpt", str(weights[0]))
    assert result.exit_code == 1
    report = json.loads(result.stdout)["recompute"]
    assert not report["ok"] and len(report["differing"]) == 24
    text = invoke("verify", str(store), "--recompute", "24", "--teacher-ckpt", str(weights[0]))
    assert text.exit_code == 1 and "24 DIFFER" in text.stdout and "sample " in text.stdout


@pytest.mark.parametrize("layout", LAYOUTS, ids=["dense", "sparse", "quant"])
def test_an_edited_row_with_its_checksum_recomputed_is_named(
    tmp_path: Path, weights: tuple[Path, Path], layout: list[str]
) -> None:
    store = dumped(tmp_path, weights[0], *layout)
    writable = open_store(str(store), "r+")
    quant = "--quantize" in layout  # its max moved beyond half a step (what recompute allows)
    path = "logits/raw/stats" if quant else "logits/raw/values" if layout else "logits/raw"
    arr = writable.raw_array(path)  # zarr recomputes the chunk's crc32c on write
    row = np.asarray(arr[5, 1])
    if quant:
        row[0] += row[1] + np.asarray(0.25, dtype=row.dtype)
        arr[5, 1] = row
    else:
        arr[5, 1] = row + np.asarray(0.25, dtype=row.dtype)
    assert invoke("verify", str(store)).exit_code == 0  # every checksum holds
    result = recompute(store, 24, "--teacher-ckpt", str(weights[0]))
    assert result.exit_code == 1, result.stdout
    differing = json.loads(result.stdout)["recompute"]["differing"]
    assert [(d["sample"], d["view"]) for d in differing] == [(5, 1)]
    text = invoke("verify", str(store), "--recompute", "24", "--teacher-ckpt", str(weights[0]))
    assert "sample 5 view 1: difference" in text.stdout


def test_weights_that_are_not_the_stores_are_refused_in_one_line(
    tmp_path: Path, weights: tuple[Path, Path]
) -> None:
    store = dumped(tmp_path, weights[0])
    result = recompute(store, 4, "--teacher-ckpt", str(weights[1]))
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and result.stdout == "", result.stderr
    assert file_sha256(weights[1]) in lines[0] and file_sha256(weights[0]) in lines[0]
    assert recompute(store, 4).exit_code == 0  # the checkpoint the store records, found
    weights[0].rename(tmp_path / "elsewhere.safetensors")
    result = recompute(store, 4)  # a checkpoint store needs its checkpoint
    assert result.exit_code == 2 and "--teacher-ckpt" in result.stderr
    assert "w0.safetensors" in result.stderr


def test_a_random_teacher_store_recomputes_from_its_seed(tmp_path: Path) -> None:
    out = tmp_path / "r.zarr"
    args = ["--dataset", "fake:10:10:8", "--teacher", "resnet8", "--teacher-init", "random",
            "--views", "2", "--seed", "5", "--dtype", "float32", "--out", str(out)]  # fmt: skip
    assert invoke("dump", *args).exit_code == 0
    report = json.loads(recompute(out, 20).stdout)["recompute"]
    assert report["ok"] and report["tolerance"] == 1e-4 and report["max_diff"] <= 1e-4
