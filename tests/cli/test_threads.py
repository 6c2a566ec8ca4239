"""``--threads N`` (issue 30, item 6): torch's intra- and inter-op threads and the BLAS pools,
on every command that computes; refused where nothing computes; a runtime setting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from threadpoolctl import threadpool_info

from sortkd_cache.errors import ConfigError
from sortkd_cache.runtime import compute_threads, default_threads
from sortkd_cache.testing import invoke, one_error_line

torch.set_num_threads(1)


def test_the_block_sets_torch_and_blas_pools_and_restores_them() -> None:
    before = torch.get_num_threads()
    with compute_threads(3) as used:
        assert used.intra == 3 and torch.get_num_threads() == 3
        assert {pool["num_threads"] for pool in threadpool_info()} == {3}
    assert torch.get_num_threads() == before


def test_unset_keeps_a_callers_smaller_count() -> None:
    """This module runs on one thread (as every tiny-model test): unset, a command keeps it."""
    with compute_threads() as used:
        assert used.intra == 1 and torch.get_num_threads() == 1


def test_default_is_cores_divided_by_local_ranks() -> None:
    cores = default_threads({})
    assert cores >= 1
    assert default_threads({"LOCAL_WORLD_SIZE": "2"}) == max(1, cores // 2)
    assert default_threads({"LOCAL_WORLD_SIZE": str(cores * 4)}) == 1
    with pytest.raises(ConfigError, match="LOCAL_WORLD_SIZE"):
        default_threads({"LOCAL_WORLD_SIZE": "two"})


def test_interop_threads_are_set_once_and_a_later_block_keeps_them() -> None:
    """In a fresh process: the first block sets the inter-op threads; a second one asking
    for another count (torch refuses a second setting) keeps the first, without an error."""
    script = (
        "import torch\n"
        "from sortkd_cache.runtime import compute_threads\n"
        "with compute_threads(2) as a:\n"
        "    torch.ones(64, 64) @ torch.ones(64, 64)\n"
        "with compute_threads(1) as b:\n"
        "    print(a.interop, b.interop, torch.get_num_interop_threads(), b.intra,"
        " torch.get_num_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2", "2", "2", "1", "1"]


@pytest.mark.parametrize(
    "args",
    [
        ("train", "--dataset", "digits", "--student", "digits_mlp", "--loss", "ce", "--out", "x"),
        ("dump", "--dataset", "digits", "--teacher", "digits_mlp", "--out", "x.zarr"),
        ("sort", "missing.zarr"),
        ("run", "digits_demo", "--out", "x"),
    ],
)
@pytest.mark.parametrize("bad", ["0", "5000"])
def test_a_bad_thread_count_is_one_line_exit_2(
    args: tuple[str, ...], bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    one_error_line(invoke(*args, "--threads", bad), "--threads", f"got {bad}")
    assert list(tmp_path.iterdir()) == []


def test_threads_where_nothing_computes_is_refused(small_store: Path, tmp_path: Path) -> None:
    one_error_line(invoke("verify", str(small_store), "--threads", "2"), "--threads", "--recompute")
    dst = tmp_path / "c.zarr"
    one_error_line(
        invoke("copy", str(small_store), str(dst), "--threads", "2"), "--threads", "--topk"
    )
    assert not dst.exists()


def test_train_records_threads_as_runtime_and_a_resume_may_change_them(
    small_store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    base = ["train", "--cache", str(small_store), "--student", "digits_mlp", "--loss", "kd",
            "--epochs", "2", "--milestones", "1", "--batch-size", "32", "--device", "cpu",
            "--no-progress", "--out", str(out)]  # fmt: skip
    first = invoke(*base, "--threads", "1", "--stop-after", "1")
    assert first.exit_code == 0, first.output
    assert json.loads((out / "config.json").read_text())["threads"] == 1
    resumed = invoke(*base, "--threads", "2", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((out / "summary.json").read_text())["epochs"] == 2
