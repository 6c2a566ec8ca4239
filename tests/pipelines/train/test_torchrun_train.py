"""`train` under torchrun (two ranks, DDP with gloo on CPU) matches the single-process run.

Each rank trains on its half of every global batch and DDP averages the gradients, so a
student without BatchNorm (``digits_mlp``) follows the single-process run to float rounding.
On CPU torch has no SyncBatchNorm: a BatchNorm student (``digits_cnn_s``) normalises with
per-rank batch statistics and only stays close. The store has 1000 samples and the batch is
64, so the last batch of each epoch (40 samples) is split 20/20 over the ranks.
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sortkd_cache.testing import dump_and_sort, topk_store

N = 1000


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 300),
    world=st.integers(2, 4),
    per_rank=st.integers(2, 9),
    seed=st.integers(0, 2**16),
)
def test_shard_splits_every_global_batch_evenly(
    n: int, world: int, per_rank: int, seed: int
) -> None:
    """Step k of every rank is its part of global batch k; the parts, in rank order, rebuild
    the batch; only fewer than ``world`` samples of the last batch are left out."""
    import torch

    from sortkd_cache.data import shard_order

    batch = per_rank * world
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    parts = [shard_order(order, batch, r, world) for r in range(world)]
    assert len({p.numel() for p in parts}) == 1  # same number of steps on every rank
    steps = [torch.split(p, per_rank) for p in parts]
    rebuilt = torch.cat([torch.cat([s[k] for s in steps]) for k in range(len(steps[0]))])
    kept = n - (n % batch) % world
    assert rebuilt.tolist() == order[:kept].tolist()
    assert shard_order(order, batch, 0, 1) is order


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("store") / "fake.zarr"
    return dump_and_sort(out, f"fake:{N}:10:8", 256, "digits_cnn_l", dtype="float32")


def _train_args(store: Path, student: str, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--cache",
        str(store),
        "--student",
        student,
        "--logits",
        "sort",
        "--loss",
        "kd",
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--lr",
        "0.1",
        "--milestones",
        "",
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


def _metrics(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _run_both(
    tmp_path: Path,
    store: Path,
    student: str,
    env: dict[str, str],
    cli_cmd: Callable[..., list[str]],
    torchrun_cmd: Callable[..., list[str]],
) -> tuple[Path, Path]:
    single, multi = tmp_path / "single", tmp_path / "multi"
    proc = subprocess.run(
        cli_cmd(*_train_args(store, student, single)),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(
        torchrun_cmd(*_train_args(store, student, multi)),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # only rank 0 reports and writes the run directory
    assert len([ln for ln in proc.stdout.splitlines() if ln.startswith("finished")]) == 1
    assert sorted(p.name for p in multi.iterdir()) == sorted(p.name for p in single.iterdir())
    assert json.loads((multi / "config.json").read_text())["resolved"]["world_size"] == 2
    return single, multi


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


@pytest.mark.slow
def test_ddp_without_batchnorm_matches_single_process(
    tmp_path: Path,
    store: Path,
    scale_env: dict[str, str],
    cli_cmd: Callable[..., list[str]],
    torchrun_cmd: Callable[..., list[str]],
) -> None:
    single, multi = _run_both(tmp_path, store, "digits_mlp", scale_env, cli_cmd, torchrun_cmd)
    a, b = _metrics(single), _metrics(multi)
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b] == [1, 2]
    for ra, rb in zip(a, b, strict=True):
        assert (ra["view"], ra["lr"]) == (rb["view"], rb["lr"])
        for key in ("loss", "ce", "kd"):
            assert _rel(ra[key], rb[key]) < 1e-4, (key, ra[key], rb[key])
        # accuracies count samples: at most one borderline argmax may flip
        assert abs(ra["train_top1"] - rb["train_top1"]) <= 100.0 / N + 1e-9
        assert abs(ra["test_top1"] - rb["test_top1"]) <= 0.5
    assert a[-1]["loss"] < a[0]["loss"]  # it did train

    # the final weights agree too, and training moved them away from the seeded start
    import numpy as np
    import torch
    from safetensors.numpy import load_file

    from sortkd_cache.models import create_model

    torch.manual_seed(0)
    init = {k: v.numpy() for k, v in create_model("digits_mlp", 10, 3).state_dict().items()}
    wa, wb = load_file(single / "model.safetensors"), load_file(multi / "model.safetensors")
    assert sorted(wa) == sorted(wb) == sorted(init)
    for name in wa:
        np.testing.assert_allclose(wb[name], wa[name], rtol=1e-4, atol=1e-6, err_msg=name)
    assert max(float(np.abs(wa[k] - init[k]).max()) for k in wa) > 1e-2


@pytest.mark.slow
def test_ddp_with_batchnorm_stays_close_on_cpu(
    tmp_path: Path,
    store: Path,
    scale_env: dict[str, str],
    cli_cmd: Callable[..., list[str]],
    torchrun_cmd: Callable[..., list[str]],
) -> None:
    single, multi = _run_both(tmp_path, store, "digits_cnn_s", scale_env, cli_cmd, torchrun_cmd)
    a, b = _metrics(single), _metrics(multi)
    assert len(a) == len(b) == 2
    for ra, rb in zip(a, b, strict=True):
        assert math.isfinite(rb["loss"])
        # per-rank BatchNorm statistics (32 samples instead of 64): close, not equal
        assert _rel(ra["loss"], rb["loss"]) < 2e-2, (ra["loss"], rb["loss"])
        assert abs(ra["train_top1"] - rb["train_top1"]) <= 3.0


# ---------------------------------------------------------------- streamed soft labels
# 1000 samples in 40 chunks of 25: with the default 8 lanes (batch 64) every lane holds 5
# whole chunks, so the epoch's last batch (40 samples) is the lanes' leftovers in lane order,
# and rank 0 (lanes 0-3) and rank 1 (lanes 4-7) read disjoint halves of the chunks.
STREAM_CHUNK = 25


@pytest.fixture(scope="module")
def stream_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stream") / "fake.zarr"
    return dump_and_sort(out, f"fake:{N}:10:8", STREAM_CHUNK, "digits_cnn_l", dtype="float32")


def _ok(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _rank_chunks(epoch: int, rank: int, world: int) -> list[int]:
    """The chunks rank ``rank`` of ``world`` must read in ``epoch``: those its part of the
    streamed order (seed 0, 8 lanes, window 2) falls in, from the library's own functions."""
    import torch

    from sortkd_cache.data import StreamLayout, shard_order, streamed_order

    layout = StreamLayout(N, STREAM_CHUNK, lanes=8, window=2)
    order = torch.from_numpy(streamed_order(layout, 64, 0, epoch))
    return sorted(set((shard_order(order, 64, rank, world) // STREAM_CHUNK).tolist()))


def _check_streamed_pair(single: Path, multi: Path, view_bytes: int) -> list[dict[str, Any]]:
    """The 2-rank streamed run ``multi`` against the 1-rank one: every epoch each rank read
    exactly its part's chunks (disjoint halves), a few chunks at a time, and the run followed
    the single-process run as the whole-view one does. Returns the 2-rank metrics."""
    import numpy as np
    from safetensors.numpy import load_file

    resolved = json.loads((multi / "config.json").read_text())["resolved"]
    assert (resolved["world_size"], resolved["soft_labels"]) == (2, "stream")
    assert (resolved["stream_lanes"], resolved["stream_window"]) == (8, 2)
    a, b = _metrics(single), _metrics(multi)
    assert len(a) == len(b) == 2
    every = list(range(N // STREAM_CHUNK))
    for epoch, (ra, rb) in enumerate(zip(a, b, strict=True)):
        assert ra["stream_chunks"] == [every] == [_rank_chunks(epoch, 0, 1)]
        mine = rb["stream_chunks"]
        assert mine == [_rank_chunks(epoch, r, 2) for r in range(2)]
        assert len(mine[0]) == len(mine[1]) == len(every) // 2
        assert not set(mine[0]) & set(mine[1]) and sorted(mine[0] + mine[1]) == every
        # resident soft labels: a few chunks of 25 rows, never a whole view
        assert 0 < max(rb["stream_peak_bytes"]) <= ra["stream_peak_bytes"][0] < view_bytes
        assert (ra["view"], ra["lr"]) == (rb["view"], rb["lr"])
        for key in ("loss", "ce", "kd"):
            assert _rel(ra[key], rb[key]) < 1e-4, (key, ra[key], rb[key])
        assert abs(ra["train_top1"] - rb["train_top1"]) <= 100.0 / N + 1e-9
    wa, wb = load_file(single / "model.safetensors"), load_file(multi / "model.safetensors")
    for name in wa:
        np.testing.assert_allclose(wb[name], wa[name], rtol=1e-4, atol=1e-6, err_msg=name)
    return b


@pytest.mark.slow
def test_streamed_ddp_reads_its_own_chunks_and_matches_single_process(
    tmp_path: Path,
    stream_store: Path,
    scale_env: dict[str, str],
    cli_cmd: Callable[..., list[str]],
    torchrun_cmd: Callable[..., list[str]],
) -> None:
    """Two ranks streaming: each reads only its lanes' chunks (half of them, disjoint), the
    run follows the single-process streamed run as the whole-view one does, and a 2-rank
    --resume after an interrupted run gives the uninterrupted 2-rank run's weights exactly."""
    import numpy as np
    from safetensors.numpy import load_file

    stream = ("--soft-labels", "stream")
    single, multi, part = tmp_path / "single", tmp_path / "multi", tmp_path / "part"
    _ok(cli_cmd(*_train_args(stream_store, "digits_mlp", single, *stream)), scale_env)
    _ok(torchrun_cmd(*_train_args(stream_store, "digits_mlp", multi, *stream)), scale_env)
    b = _check_streamed_pair(single, multi, N * 10 * 4)
    wb = load_file(multi / "model.safetensors")

    # interrupted after epoch 1, resumed: the same streamed order, the same weights
    _ok(
        torchrun_cmd(*_train_args(stream_store, "digits_mlp", part, *stream, "--stop-after", "1")),
        scale_env,
    )
    assert not (part / "model.safetensors").exists() and len(_metrics(part)) == 1
    _ok(
        torchrun_cmd(*_train_args(stream_store, "digits_mlp", part, *stream, "--resume")), scale_env
    )
    wc = load_file(part / "model.safetensors")
    assert all(np.array_equal(wc[k], wb[k]) for k in wb)
    c = _metrics(part)
    assert [r["stream_chunks"] for r in c] == [r["stream_chunks"] for r in b]
    assert [r["loss"] for r in c] == [r["loss"] for r in b]


@pytest.mark.slow
def test_streamed_ddp_from_a_sparse_store(
    tmp_path: Path,
    stream_store: Path,
    scale_env: dict[str, str],
    cli_cmd: Callable[..., list[str]],
    torchrun_cmd: Callable[..., list[str]],
) -> None:
    """The same from its top-3 copy (sorted rows): each rank reads only its half of the sparse
    chunks, and the run follows the single-process one."""
    import sortkd_cache as sk

    top3 = tmp_path / "top3.zarr"
    topk_store(stream_store, top3, 3)
    view_bytes = N * sk.open_store(top3).sparse_spec.bytes_per_row
    stream = ("--soft-labels", "stream")
    single, multi = tmp_path / "single", tmp_path / "multi"
    _ok(cli_cmd(*_train_args(top3, "digits_mlp", single, *stream)), scale_env)
    _ok(torchrun_cmd(*_train_args(top3, "digits_mlp", multi, *stream)), scale_env)
    _check_streamed_pair(single, multi, view_bytes)
