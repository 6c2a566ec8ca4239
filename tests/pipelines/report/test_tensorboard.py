"""``--log tensorboard``: the event files, read back with tensorboard's own reader
(EventAccumulator), hold the scalars of metrics.jsonl, the step loss every --log-every
steps and the configuration; a sweep writes one event directory per member; without the
package the option is refused naming the extra."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from sortkd_cache.errors import ConfigError
from sortkd_cache.pipelines.configs import TrainConfig
from sortkd_cache.testing import invoke

from .conftest import SMALL

accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="the optional extra [tensorboard] is not installed",
)


def _events(run: Path) -> Any:
    acc = accumulator.EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return acc


def _rows(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_event_files_hold_the_metrics(small_store: Path, tmp_path: Path) -> None:
    from sortkd_cache.pipelines.train import train

    run = tmp_path / "run"
    cfg = TrainConfig(cache=str(small_store), out=str(run), loss="kd", log="tensorboard",
                      log_every=2, **SMALL)  # fmt: skip
    result = train(cfg)
    acc = _events(run)
    rows = _rows(run)
    scalars = set(acc.Tags()["scalars"])
    numeric = [k for k in rows[0] if k != "epoch" and isinstance(rows[0][k], (int, float))]
    assert {f"epoch/{k}" for k in numeric} <= scalars and "epoch/lr" in scalars
    for key in numeric:
        events = acc.Scalars(f"epoch/{key}")
        assert [e.step for e in events] == [r["epoch"] for r in rows]
        assert [e.value for e in events] == pytest.approx([r[key] for r in rows], rel=1e-6)
    steps = acc.Scalars("step/loss")
    losses = result.step_losses
    assert len(losses) == 9  # 3 epochs of 3 steps
    assert [e.step for e in steps] == list(range(2, len(losses) + 1, 2))
    assert [e.value for e in steps] == pytest.approx(losses[1::2], rel=1e-6)
    (text,) = acc.Tensors("config/text_summary")
    assert b'"log_every": 2' in text.tensor_proto.string_val[0]


def test_a_sweep_writes_one_event_directory_per_member(small_store: Path, tmp_path: Path) -> None:
    from sortkd_cache.pipelines.sweep import SweepConfig, grid, sweep

    out = tmp_path / "sw"
    options = {**SMALL, "cache": str(small_store), "log": "tensorboard", "log_every": 3}
    members = grid(options, out=str(out), students=["digits_mlp"], losses=["kd"],
                   logits=["raw,sort"], seeds=[0])  # fmt: skip
    result = sweep(SweepConfig(out=str(out), members=members, progress=False))
    # the sweep ends with its report: the conclusion last (one seed: no interval)
    assert result.table.rstrip().endswith(
        "- kd sort against kd raw: "
        f"{result.report['paired'][0]['mean']:+.2f} points on one seed, no interval: "
        "within noise."
    )  # fmt: skip
    runs = sorted(p.parent for p in out.glob("*/tensorboard"))
    assert len(runs) == 2
    for run in runs:
        acc = _events(run)
        rows = _rows(run)
        got = [e.value for e in acc.Scalars("epoch/test_top1")]
        assert got == pytest.approx([r["test_top1"] for r in rows], rel=1e-6)
        assert [e.step for e in acc.Scalars("step/loss")] == [3, 6, 9]


def test_without_the_package_the_option_is_refused(
    monkeypatch: pytest.MonkeyPatch, small_store: Path, tmp_path: Path
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "tensorboard" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ConfigError, match=r"sortkd-cache\[tensorboard\]"):
        TrainConfig(cache="c.zarr", out="o", student="digits_mlp", log="tensorboard")

    res = invoke("train", "--cache", str(small_store), "--student",
                                   "digits_mlp", "--out", str(tmp_path / "r"), "--log",
                                   "tensorboard")  # fmt: skip
    assert res.exit_code == 2
    (line,) = res.stderr.strip().splitlines()
    assert "pip install 'sortkd-cache[tensorboard]'" in line
    assert not (tmp_path / "r").exists()
    with pytest.raises(ConfigError, match="--log-every"):
        TrainConfig(cache="c.zarr", out="o", student="digits_mlp", log_every=5)
