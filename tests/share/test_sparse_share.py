"""Sparse stores travel like dense ones: copy --topk / dump --topk, then train from a
directory, a zip and S3 (moto), with identical training on every location."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sortkd_cache.pipelines.derive import DeriveConfig, derive_store
from sortkd_cache.pipelines.train import TrainConfig, train
from sortkd_cache.store import copy_store, verify_store

TRAIN: dict[str, Any] = {
    "student": "digits_mlp",
    "logits": "sort",
    "loss": "kd",
    "epochs": 1,
    "milestones": (),
    "batch_size": 256,
    "progress": False,
    "device": "cpu",
}


def _losses(cache: str, out: Path) -> list[float]:
    result = train(TrainConfig(cache=cache, out=str(out), **TRAIN))
    assert result.finished
    return result.step_losses


@pytest.mark.slow
def test_copy_topk_then_train_from_dir_zip_and_s3(
    share_store: Path, s3: Any, tmp_path: Path
) -> None:
    places = [str(tmp_path / "top3.zarr"), str(tmp_path / "top3.zip"), s3.url("team/top3.zarr")]
    for dst in places:
        result = derive_store(str(share_store), dst, DeriveConfig(topk=3), progress=False)
        assert result.verify.sound, result.verify.problems
    assert verify_store(places[2]).sound
    runs = [_losses(p, tmp_path / f"run{i}") for i, p in enumerate(places)]
    assert runs[0] == runs[1] == runs[2]


@pytest.mark.slow
def test_dump_topk_then_train_from_zip_and_s3(s3: Any, tmp_path: Path) -> None:
    from sortkd_cache.pipelines.dump import DumpConfig, dump
    from sortkd_cache.pipelines.sort import SortConfig, sort_store

    local = tmp_path / "d.zarr"
    dump(
        DumpConfig(
            dataset="digits", teacher="digits_cnn_s", teacher_init="random", views=2,
            chunk_samples=512, out=str(local), progress=False, device="cpu", topk=4,
        )
    )  # fmt: skip
    sort_store(SortConfig(store=str(local), method="sort", progress=False))
    places = [str(local), str(tmp_path / "d.zip"), s3.url("team/d.zip"), s3.url("team/d.zarr")]
    for dst in places[1:]:
        assert copy_store(str(local), dst, progress=False).verify.sound
    runs = [_losses(p, tmp_path / f"run{i}") for i, p in enumerate(places)]
    assert all(np.array_equal(runs[0], r) for r in runs[1:])


def test_sparse_store_over_http(
    share_store: Path, http_root: Path, http_url: str, tmp_path: Path
) -> None:
    """Read-only http(s) cannot list keys: copy and train find the sparse groups anyway."""
    import sortkd_cache as sk

    derive_store(
        str(share_store), str(http_root / "top3.zarr"), DeriveConfig(topk=3), progress=False
    )
    url = f"{http_url}/top3.zarr"
    assert verify_store(url).sound
    down = tmp_path / "down.zarr"
    assert copy_store(url, down, progress=False).verify.sound
    local = sk.open_store(down).sparse_logits("sort")[:, 1]
    remote = sk.open_store(url).sparse_logits("sort")[:, 1]
    assert np.array_equal(local.values, remote.values) and np.array_equal(local.ids, remote.ids)
