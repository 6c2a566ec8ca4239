"""One writer per run directory (issue 28, item 1): ``train`` and ``sweep`` lock ``--out``.

The reproducer: a second ``sweep --overwrite`` started while the first runs was accepted, both
exited 0, and the folder mixed one sweep's config.json with the other's weights. The first
writer is stopped (SIGSTOP) while it holds the lock, so the second one always meets a live
holder, however fast or slow the machine is; then it continues and must finish intact.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sortkd_cache.testing import cli_env, console_script, invoke, one_error_line, run_cli

SMALL = ("--epochs", "2", "--milestones", "1", "--batch-size", "32", "--device", "cpu")
LOCK = ".sortkd-lock.json"


def _sweep(store: Path, out: Path, losses: str, *extra: str) -> list[str]:
    return [
        "sweep", "--cache", str(store), "--student", "digits_mlp", "--loss", losses,
        "--logits", "raw", "--seeds", "0", *SMALL, "--stack", "off", "--no-progress",
        "--out", str(out), *extra,
    ]  # fmt: skip


def _train(store: Path, out: Path, loss: str, *extra: str) -> list[str]:
    return [
        "train", "--cache", str(store), "--student", "digits_mlp", "--loss", loss,
        *SMALL, "--no-progress", "--out", str(out), *extra,
    ]  # fmt: skip


def _stopped_writer(args: list[str], locked: Path) -> Iterator[subprocess.Popen[str]]:
    """A first writer, stopped once it holds the lock of directory ``locked``; continued at
    the end."""
    proc = subprocess.Popen(
        [console_script(), *args], env=cli_env(), stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not (locked / LOCK).exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the first writer never took the lock"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.communicate(timeout=300)


@pytest.fixture
def first_sweep(small_store: Path, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    out = tmp_path / "sw"  # stopped once it locked its last member (after the sweep itself)
    yield from _stopped_writer(_sweep(small_store, out, "kd,dkd"), out / "digits_mlp-kd-raw-s0")


@pytest.mark.parametrize("flag", ["--overwrite", "--resume"])
def test_a_second_sweep_on_a_running_sweeps_out_exits_2_and_the_first_is_intact(
    small_store: Path, tmp_path: Path, first_sweep: subprocess.Popen[str], flag: str
) -> None:
    out = tmp_path / "sw"
    holder = str(first_sweep.pid)
    second = invoke(*_sweep(small_store, out, "ce,kd", flag))
    line = one_error_line(second, f"sweep directory '{out}'", "being written", holder)
    assert socket.gethostname() in line and "sortkd-cache sweep" in line
    # a train into one of its members is refused as well (each member is locked too)
    member = out / "digits_mlp-kd-raw-s0"
    one_error_line(invoke(*_train(small_store, member, "kd", "--overwrite")), "being written")
    os.kill(first_sweep.pid, signal.SIGCONT)
    _, err = first_sweep.communicate(timeout=300)
    assert first_sweep.returncode == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["members"]) == ["digits_mlp-dkd-raw-s0", "digits_mlp-kd-raw-s0"]
    assert all(m["status"] == "finished" for m in summary["members"].values())
    for name in summary["members"]:  # every member's files are the first sweep's
        config = json.loads((out / name / "config.json").read_text())
        assert config["loss"] == name.split("-")[1]
        assert (out / name / "model.safetensors").is_file()
    assert not (out / "digits_mlp-ce-s0").exists()
    assert not list(out.rglob(LOCK))  # every lock released


def test_a_second_train_on_a_running_runs_out_exits_2(small_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    for first in _stopped_writer(_train(small_store, out, "kd"), out):
        for flag in ("--resume", "--overwrite"):
            result = invoke(*_train(small_store, out, "dkd", flag))
            one_error_line(result, f"run directory '{out}'", str(first.pid), "sortkd-cache train")
        os.kill(first.pid, signal.SIGCONT)
        _, err = first.communicate(timeout=300)
        assert first.returncode == 0, err
    assert json.loads((out / "config.json").read_text())["loss"] == "kd"
    assert json.loads((out / "summary.json").read_text())["loss"] == "kd"
    assert not (out / LOCK).exists()


def test_a_lock_left_by_a_dead_process_is_taken_over_saying_so(
    small_store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = {"host": socket.gethostname(), "pid": dead.pid, "since": "2020-01-01T00:00:00+00:00"}
    (out / LOCK).write_text(json.dumps({**record, "purpose": "sortkd-cache train"}))
    proc = run_cli(*_train(small_store, out, "kd"))
    assert proc.returncode == 0, proc.stderr
    assert "took over the writer lock" in proc.stderr and str(dead.pid) in proc.stderr
    assert (out / "summary.json").is_file() and not (out / LOCK).exists()
