"""``verify``'s recompute options (issue 29, item 5): ``--device`` defaults to ``auto`` as in
``dump`` and ``train``, and ``--device``, ``--seed`` and ``--teacher-ckpt`` set without
``--recompute`` are refused (exit 2, one line) before the store is read."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sortkd_cache.cli.main import all_commands
from sortkd_cache.pipelines.configs import DumpConfig, TrainConfig
from sortkd_cache.pipelines.verify import RecomputeConfig
from sortkd_cache.testing import invoke

pytestmark = pytest.mark.fast


def test_device_defaults_agree() -> None:
    verify = all_commands()["verify"]
    device = next(p for p in verify.params if p.name == "device")
    declared = {f.name: f.default for f in dataclasses.fields(DumpConfig)}["device"]
    trained = {f.name: f.default for f in dataclasses.fields(TrainConfig)}["device"]
    assert device.default == declared == trained == RecomputeConfig("s", 1).device == "auto"


@pytest.mark.parametrize(
    "args", [["--device", "cpu"], ["--seed", "3"], ["--teacher-ckpt", "w.safetensors"]]
)
def test_recompute_options_without_recompute_are_refused(tmp_path: Path, args: list[str]) -> None:
    result = invoke("verify", str(tmp_path / "absent.zarr"), *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert f"{args[0]} {args[1]} does nothing without --recompute" in lines[0], lines


def test_data_root_without_dataset_or_recompute_is_refused(tmp_path: Path) -> None:
    result = invoke("verify", str(tmp_path / "absent.zarr"), "--data-root", str(tmp_path))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "does nothing without --dataset or --recompute" in lines[0], lines
