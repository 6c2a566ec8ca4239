"""``lr`` in metrics.jsonl is the rate the epoch trained at: the row of the first epoch after
a milestone shows the decayed rate (train, and a sweep's members stacked or not)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import SMALL


def _lrs(run: Path) -> list[float]:
    return [json.loads(line)["lr"] for line in (run / "metrics.jsonl").read_text().splitlines()]


SCHEDULE = {**SMALL, "epochs": 3, "milestones": (1,), "lr": 0.1, "lr_decay": 0.1}


def test_train_rows_show_the_rate_each_epoch_trained_at(small_store: Path, tmp_path: Path) -> None:
    from sortkd_cache.pipelines.configs import TrainConfig
    from sortkd_cache.pipelines.train import train

    train(TrainConfig(cache=str(small_store), out=str(tmp_path / "run"), loss="kd", **SCHEDULE))
    # epoch 1 trains at 0.1; the milestone after it decays the rate for epochs 2 and 3
    assert _lrs(tmp_path / "run") == pytest.approx([0.1, 0.01, 0.01])


@pytest.mark.parametrize("stack", ["off", "on"])
def test_sweep_rows_show_the_rate_each_epoch_trained_at(
    small_store: Path, tmp_path: Path, stack: str
) -> None:
    from sortkd_cache.pipelines.sweep import SweepConfig, grid, sweep

    out = tmp_path / "sw"
    options = {**SCHEDULE, "cache": str(small_store)}
    members = grid(options, out=str(out), students=["digits_mlp"], losses=["kd"],
                   logits=["raw,sort"], seeds=[0])  # fmt: skip
    result = sweep(SweepConfig(out=str(out), members=members, stack=stack, progress=False))
    assert len(result.members) == 2
    for info in result.members.values():
        assert _lrs(Path(info["run_dir"])) == pytest.approx([0.1, 0.01, 0.01])
