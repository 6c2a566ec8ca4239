"""`--compile` acts: the step's forward runs through torch.compile (TorchDynamo captures graphs;
inductor builds them on the CPU), the run is recorded as compiled, and it trains as the eager
run does (to float rounding: compiled kernels fuse and sum in another order)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sortkd_cache.pipelines.train import TrainConfig, train

torch.set_num_threads(1)


def _losses(run: Path) -> list[float]:
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows]


@pytest.mark.slow
def test_compile_runs_the_forward_through_torch_compile(tmp_path: Path) -> None:
    from torch._dynamo.utils import counters

    base = {"dataset": "digits", "student": "digits_mlp", "loss": "ce", "epochs": 2,
            "milestones": (), "batch_size": 64, "device": "cpu", "progress": False}  # fmt: skip
    eager = train(TrainConfig(**base, out=str(tmp_path / "eager")))
    torch._dynamo.reset()
    counters.clear()
    compiled = train(TrainConfig(**base, compile=True, out=str(tmp_path / "compiled")))
    assert counters["stats"]["unique_graphs"] >= 1  # TorchDynamo captured the forward
    assert json.loads((tmp_path / "compiled" / "config.json").read_text())["compile"] is True
    assert compiled.finished and compiled.final_test_top1 > 60.0
    assert _losses(tmp_path / "compiled") == pytest.approx(_losses(tmp_path / "eager"), rel=1e-3)
    assert abs(compiled.final_test_top1 - eager.final_test_top1) <= 1.0
    torch._dynamo.reset()
