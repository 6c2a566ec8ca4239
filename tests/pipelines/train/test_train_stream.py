"""`train --soft-labels stream`: equal to an online teacher, exact resume, recorded, refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sortkd_cache.checkpoint import load_state_dict
from sortkd_cache.data import _plan as _stream_source
from sortkd_cache.errors import ConfigError
from sortkd_cache.pipelines.train import TrainConfig, train
from sortkd_cache.testing import invoke, small_dump

BASE: dict[str, Any] = {
    "student": "digits_mlp",
    "epochs": 2,
    "milestones": (1,),
    "batch_size": 32,
    "progress": False,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 samples in 10 chunks of 32 (the last one short), 2 views, float32 logits."""
    out = tmp_path_factory.mktemp("stream") / "s.zarr"
    return small_dump(
        out, dataset="fake:300:10:8", teacher="digits_mlp", views=2, chunk_samples=32,
        dtype="float32",
    )  # fmt: skip


def _rel(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-12)))


def _run(store: Path, out: Path, **kw: Any) -> Any:
    return train(TrainConfig(cache=str(store), out=str(out), **{**BASE, **kw}))


def test_cached_equals_online_teacher_on_the_streamed_path(store: Path, tmp_path: Path) -> None:
    cached = _run(store, tmp_path / "cached", loss="kd", soft_labels="stream", stream_window=3)
    online = _run(
        store,
        tmp_path / "online",
        loss="kd",
        soft_labels="stream",
        stream_window=3,
        online_teacher="digits_mlp",
        teacher_init="random",
    )
    assert len(cached.step_losses) == len(online.step_losses) == 2 * (300 // 32 + 1)
    assert _rel(cached.step_losses, online.step_losses) <= 1e-5
    whole = _run(store, tmp_path / "view", loss="kd", soft_labels="view")
    assert whole.step_losses != cached.step_losses  # another order of the same samples
    config = json.loads((tmp_path / "cached" / "config.json").read_text())
    assert config["soft_labels"] == "stream" and config["stream_window"] == 3
    resolved = config["resolved"]
    assert resolved["soft_labels"] == "stream"
    assert (resolved["stream_lanes"], resolved["stream_window"]) == (8, 3)
    view = json.loads((tmp_path / "view" / "config.json").read_text())["resolved"]
    assert view["soft_labels"] == "view" and "stream_lanes" not in view


def test_streamed_resume_is_exact(store: Path, tmp_path: Path) -> None:
    cfg = {"loss": "dkd", "logits": "raw", "soft_labels": "stream"}
    full = _run(store, tmp_path / "full", **cfg)
    part = _run(store, tmp_path / "part", stop_after=1, **cfg)
    rest = _run(store, tmp_path / "part", resume=True, **cfg)
    assert rest.finished and part.step_losses + rest.step_losses == full.step_losses
    wa = load_state_dict(tmp_path / "full" / "model.safetensors")
    wb = load_state_dict(tmp_path / "part" / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_auto_streams_past_the_threshold(store: Path, tmp_path: Path, monkeypatch) -> None:
    small = _run(store, tmp_path / "small", loss="kd", epochs=1)
    monkeypatch.setattr(_stream_source, "STREAM_THRESHOLD_BYTES", 300 * 10 * 4 - 1)
    big = _run(store, tmp_path / "big", loss="kd", epochs=1)
    stream = _run(store, tmp_path / "stream", loss="kd", epochs=1, soft_labels="stream")
    modes = [
        json.loads((tmp_path / d / "config.json").read_text())["resolved"]["soft_labels"]
        for d in ("small", "big", "stream")
    ]
    assert modes == ["view", "stream", "stream"]
    assert big.step_losses == stream.step_losses
    assert small.step_losses != big.step_losses
    ce = json.loads(
        (
            Path(_run(store, tmp_path / "ce", loss="ce", epochs=1).run_dir) / "config.json"
        ).read_text()
    )
    assert ce["resolved"]["soft_labels"] == "none"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"soft_labels": "sometimes"}, "unknown --soft-labels 'sometimes'"),
        ({"stream_window": 0}, "--stream-window must be an integer >= 1"),
    ],
)
def test_bad_soft_label_values_are_refused_early(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        TrainConfig(student="digits_mlp", out="x", cache="s.zarr", **kw)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--soft-labels", "sometimes"], "sometimes"),
        (["--soft-labels", "stream", "--loss", "ce"], "--soft-labels stream"),
        (["--soft-labels", "view", "--stream-window", "3"], "--stream-window"),
        (["--soft-labels", "stream", "--stream-lanes", "3"], "3 stream lanes"),
    ],
)
def test_bad_soft_label_options_exit_2_one_line(
    store: Path, tmp_path: Path, extra: list[str], named: str
) -> None:

    out = tmp_path / "run"
    args = ["train", "--cache", str(store), "--student", "digits_mlp", "--batch-size", "32"]
    result = invoke(*args, "--epochs", "1", "--out", str(out), *extra)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], lines
    assert not out.exists()


def test_sparse_stores_stream_by_their_own_bytes() -> None:
    """ImageNet-1k at top-10 in float16 is 54 B per sample-view: 1.28 M samples are 66 MiB
    per view (streamed by auto), a million are 51 MiB (whole views); stream is accepted."""
    from sortkd_cache.sparse import SparseSpec
    from sortkd_cache.store import SparseLayout

    class Sparse:
        num_classes, chunk_samples, meta = 1000, 1024, None
        sparse_spec = SparseSpec(k=10, num_classes=1000)
        layout = SparseLayout(sparse_spec)

        def __init__(self, n: int) -> None:
            self.num_samples = n

    assert Sparse.sparse_spec.bytes_per_row == 54
    modes = [
        _stream_source.plan_soft_labels(mode, Sparse(n), batch_size=64, world=1).mode
        for mode, n in (("auto", 10**6), ("auto", 1_281_167), ("stream", 10**6))
    ]
    assert modes == ["view", "stream", "stream"]
