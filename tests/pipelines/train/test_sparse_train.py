"""Training from sparse stores: every loss, and the cached-vs-online twin step for step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sortkd_cache.pipelines.train import TrainConfig, train
from sortkd_cache.testing import topk_store

from ...conftest import TRAIN_BASE as BASE


@pytest.fixture(scope="module")
def sparse_store(digits_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits store (float32, 4 views) as top-5 sparse, with raw and sort."""
    out = tmp_path_factory.mktemp("sparse") / "top5.zarr"
    topk_store(digits_store, out, 5, sort=True)
    return out


def _rel(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-12)))


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "soft"), [("raw", "view"), ("sort", "view"), ("sort", "stream")])
def test_cached_sparse_equals_online_with_the_same_truncation(
    sparse_store: Path, digits_teacher: Path, tmp_path: Path, kind: str, soft: str
) -> None:
    common = {"cache": str(sparse_store), "logits": kind, "loss": "kd", "soft_labels": soft, **BASE}
    cached = train(TrainConfig(out=str(tmp_path / "cached"), **common))  # type: ignore[arg-type]
    online = train(
        TrainConfig(
            out=str(tmp_path / "online"),
            online_teacher="digits_cnn_l",
            teacher_ckpt=str(digits_teacher),
            **common,  # type: ignore[arg-type]
        )
    )
    assert len(cached.step_losses) == len(online.step_losses) == 2 * (1437 // 64 + 1)
    assert _rel(cached.step_losses, online.step_losses) <= 1e-4


@pytest.mark.parametrize("loss", ["kd", "dkd", "lskd", "ctkd", "ce"])
def test_every_loss_trains_from_a_sparse_store(
    sparse_store: Path, tmp_path: Path, loss: str
) -> None:
    cfg = {**BASE, "epochs": 1, "milestones": (), "student": "digits_mlp", "batch_size": 256}
    logits = "raw" if loss == "ce" else "sort"  # --logits does nothing with ce: refused
    result = train(
        TrainConfig(cache=str(sparse_store), logits=logits, loss=loss, out=str(tmp_path), **cfg)  # type: ignore[arg-type]
    )
    assert result.finished and all(np.isfinite(result.step_losses))


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["kd", "dkd"])
def test_top_c_minus_1_trains_like_the_dense_store(
    digits_store: Path, tmp_path: Path, loss: str
) -> None:
    """With K = C - 1 the tail is one class, whose mass is recorded: the sparse run is the
    dense run, step for step (up to float32 rounding of the recorded numbers)."""
    top9 = tmp_path / "top9.zarr"
    topk_store(digits_store, top9, 9)
    cfg = {**BASE, "epochs": 1, "milestones": (), "student": "digits_mlp", "batch_size": 128}
    runs = [
        train(TrainConfig(cache=str(c), logits="raw", loss=loss, out=str(tmp_path / n), **cfg))  # type: ignore[arg-type]
        for c, n in ((digits_store, "dense"), (top9, "sparse"))
    ]
    assert _rel(runs[1].step_losses, runs[0].step_losses) <= 1e-4
