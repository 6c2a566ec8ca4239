"""Many readers, one copier, and writers that exclude each other (real processes)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sortkd_cache.testing import console_script, invoke, one_error_line, run_cli

REPO = Path(__file__).resolve().parents[3]

READER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import sortkd_cache as sk
    total = 0.0
    for _ in range(3):
        store = sk.open_store(sys.argv[1])
        for kind in ("raw", "sort"):
            for view in range(store.num_views):
                total += float(store.logits(kind)[:, view].astype(np.float64).sum())
    print(repr(total))
    """
)

HOLDER = textwrap.dedent(
    """
    import sys, time
    from sortkd_cache.store import writer_lock
    with writer_lock(sys.argv[1], "sortkd-cache dump (test holder)"):
        print("locked", flush=True)
        time.sleep(120)
    """
)


def _env() -> dict[str, str]:
    env = dict(os.environ, SORTKD_NO_PROGRESS="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = str(REPO)
    env.pop("SORTKD_DEBUG", None)
    return env


def _cli(*args: str) -> list[str]:
    return [console_script(), *args]


def _expected_total(store_path: Path) -> float:
    import sortkd_cache as sk

    store = sk.open_store(store_path)
    total = 0.0
    for _ in range(3):
        for kind in ("raw", "sort"):
            for view in range(store.num_views):
                total += float(store.logits(kind)[:, view].astype(np.float64).sum())
    return total


@pytest.mark.slow
def test_readers_and_trainers_succeed_while_the_store_is_copied(
    share_store: Path, tmp_path: Path
) -> None:
    opts = "--student digits_cnn_s --logits sort --loss kd --epochs 1 --batch-size 256 --device cpu"
    train = ["train", "--cache", str(share_store), *opts.split(), "--milestones", "", "--json"]
    procs = {
        "copy-zip": _cli("copy", str(share_store), str(tmp_path / "c.zip"), "--json"),
        "copy-dir": _cli("copy", str(share_store), str(tmp_path / "c.zarr"), "--json"),
        "train": _cli(*train, "--out", str(tmp_path / "run")),
        "reader-a": [sys.executable, "-c", READER, str(share_store)],
        "reader-b": [sys.executable, "-c", READER, str(share_store)],
    }
    running = {
        name: subprocess.Popen(
            cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, cmd in procs.items()
    }
    outputs = {name: p.communicate(timeout=300) for name, p in running.items()}
    for name, p in running.items():
        assert p.returncode == 0, (name, outputs[name][1])
    for name in ("copy-zip", "copy-dir"):
        assert json.loads(outputs[name][0])["verify"]["sound"] is True
    assert json.loads(outputs["train"][0])["finished"] is True
    expected = _expected_total(share_store)
    for name in ("reader-a", "reader-b"):
        assert float(outputs[name][0]) == pytest.approx(expected, rel=1e-12)
    assert not list(tmp_path.glob("*.partial*"))


@pytest.fixture
def writable_store(share_store: Path, tmp_path: Path) -> Path:
    out = tmp_path / "mine.zarr"
    shutil.copytree(share_store, out)
    return out


@pytest.fixture
def lock_holder(writable_store: Path) -> Any:
    """A live process holding the store's writer lock (as a running dump would)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(writable_store)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    yield proc
    proc.kill()
    proc.communicate()


def test_second_writer_is_refused_naming_the_holder(writable_store: Path, lock_holder: Any) -> None:
    host = socket.gethostname()
    holder = str(lock_holder.pid)
    proc = run_cli("sort", str(writable_store), "--method", "swap")
    line = one_error_line(proc, "being written", host, holder, "since")
    assert "sortkd-cache dump (test holder)" in line
    # the other writers, through the same CLI (in-process: this test process is not the holder)
    dump = "dump --dataset digits --teacher digits_cnn_s --teacher-init random --views 2"
    args = [*dump.split(), "--chunk-samples", "512", "--resume", "--out", str(writable_store)]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "being written" in result.stderr and holder in result.stderr and host in result.stderr
    # a copy of a store that is being written is refused as well (it would be half a store)
    result = invoke("copy", str(writable_store), str(writable_store.parent / "s"))
    assert result.exit_code == 2 and "being written" in result.stderr, result.output
    assert not (writable_store.parent / "s").exists()


def test_lock_of_a_dead_process_is_taken_over(writable_store: Path) -> None:
    import sortkd_cache as sk
    from sortkd_cache.pipelines.sort import SortConfig, sort_store
    from sortkd_cache.store import read_lock

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = {
        "host": socket.gethostname(),
        "pid": dead.pid,
        "since": "2020-01-01T00:00:00+00:00",
        "purpose": "sortkd-cache dump",
    }
    (writable_store / ".sortkd-lock.json").write_text(json.dumps(record))
    sort_store(SortConfig(store=str(writable_store), method="swap", progress=False, num_workers=1))
    assert read_lock(writable_store) is None  # taken over, then released after the sort
    assert "swap" in sk.open_store(writable_store).kinds()
