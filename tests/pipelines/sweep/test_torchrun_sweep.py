"""A 2-rank torchrun sweep (gloo on CPU) equals the 1-process sweep, member by member.

As for `train` under torchrun: each rank steps on its half of every global batch and DDP
averages the gradients, so members without BatchNorm (``digits_mlp``) follow the 1-process
sweep to float rounding.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sortkd_cache.testing import dump_and_sort

N = 1000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("store") / "fake.zarr"
    return dump_and_sort(out, f"fake:{N}:10:8", 256, "digits_cnn_l", dtype="float32")


def _args(store: Path, out: Path) -> list[str]:
    return [
        "sweep", "--cache", str(store), "--student", "digits_mlp", "--loss", "kd,dkd",
        "--logits", "raw,sort", "--seeds", "0", "--epochs", "2", "--batch-size", "64",
        "--lr", "0.1", "--milestones", "", "--device", "cpu", "--stack", "off",
        "--no-progress", "--out", str(out),
    ]  # fmt: skip


def _metrics(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_rank_sweep_equals_one_process_sweep(
    tmp_path: Path,
    store: Path,
    scale_env: dict[str, str],
    cli_cmd: Callable[..., list[str]],
    torchrun_cmd: Callable[..., list[str]],
) -> None:
    single, multi = tmp_path / "single", tmp_path / "multi"
    for cmd in (cli_cmd(*_args(store, single)), torchrun_cmd(*_args(store, multi))):
        proc = subprocess.run(cmd, env=scale_env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    members = [m["name"] for m in json.loads((single / "sweep.json").read_text())["members"]]
    assert len(members) == 4
    for name in members:
        a, b = _metrics(single / name), _metrics(multi / name)
        assert json.loads((multi / name / "config.json").read_text())["resolved"]["world_size"] == 2
        for ra, rb in zip(a, b, strict=True):
            assert (ra["epoch"], ra["view"], ra["lr"]) == (rb["epoch"], rb["view"], rb["lr"])
            assert abs(ra["loss"] - rb["loss"]) <= 1e-4 * abs(ra["loss"]), (name, ra, rb)
            assert abs(ra["test_top1"] - rb["test_top1"]) <= 0.5, name
    summary = json.loads((multi / "summary.json").read_text())
    assert {m["status"] for m in summary["members"].values()} == {"finished"}
