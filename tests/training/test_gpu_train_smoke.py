"""`benchmarks/gpu_train.py --smoke`: the GPU training benchmark runs every part at tiny sizes
on the CPU and prints its one table, so the script cannot rot while no GPU is at hand. Every
row's code path runs once: each train variant but compile, CE and KD, the sweep stacked,
unstacked and one `train` process per member (a sweep of 2 instead of 8), the bf16 dump."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sortkd_cache.testing import cli_env

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_gpu_training_benchmark_runs_in_smoke_mode(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_train.py"), "--smoke",
         "--budget", "100000", "--json", str(figures)],
        capture_output=True, text=True, env={**cli_env(), "OMP_NUM_THREADS": "1"},
        timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert table[0] == "| part | model | variant | figure |"
    rows = json.loads(figures.read_text())["rows"]
    parts = [row[0] for row in rows]
    for part in ("train step rate", "CE vs cached KD", "sweep of 2", "dump"):
        assert part in parts, parts
    sweep = [r[2] for r in rows if r[0] == "sweep of 2"]
    assert sweep == ["stacked", "unstacked", "2 train runs"]
    for _, model, variant, figure in rows:
        assert f"| {model} | {variant} | {figure} |" in proc.stdout
        if "compile" in variant:
            assert figure == "skipped (--smoke: no compile)"
        else:
            assert float(figure.split()[0].rstrip("x")) > 0, figure
    steps = [r for r in rows if r[0] == "train step rate" and "compile" not in r[2]]
    assert {(r[1], r[2]) for r in steps} == {
        (m, v) for m in ("resnet8x4", "wrn_16_2") for v in ("fp32", "bf16")
    }


def test_without_a_gpu_it_asks_for_smoke() -> None:
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is at hand")
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_train.py")],
        capture_output=True, text=True, env=cli_env(), timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == "gpu_train.py: no CUDA device; run with --smoke on the CPU"
