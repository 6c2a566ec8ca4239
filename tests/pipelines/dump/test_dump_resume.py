"""`dump --resume`: killed dumps end bit-identical to uninterrupted ones.

The slow test kills a real ``sortkd-cache dump`` process with SIGKILL three times, at random
moments (the first while the store is being created, the others after a random number of
units, plus a random delay), resumes it each time, and compares every array byte for byte
with an uninterrupted dump. The fast test fakes a kill in-process.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import sortkd_cache as sk
from sortkd_cache.pipelines.dump import DumpConfig, clean_partial_files, dump
from sortkd_cache.store import read_lock
from sortkd_cache.testing import cli_env, console_script, run_cli

ARRAYS = ("labels", "aug_params", "logits/raw", "progress/raw")
VOLATILE = {"created", "dump_seconds", "store_id"}


def snapshot(path: Path) -> dict[str, object]:
    """Every array's decoded bytes, dtype and shape, plus the attributes that must match."""
    store = sk.open_store(path)
    out: dict[str, object] = {}
    for name in ARRAYS:
        a = np.asarray(store.raw_array(name)[...])
        out[name] = (a.dtype.str, a.shape, a.tobytes())
    meta = {k: v for k, v in store.meta.to_dict().items() if k not in VOLATILE}
    out["meta"] = json.dumps(meta, sort_keys=True)
    out["raw_attrs"] = json.dumps(store.kind_attrs("raw"), sort_keys=True)
    return out


def done_units(path: Path) -> int:
    chunks = path / "progress" / "raw" / "c"
    if not chunks.is_dir():
        return 0
    return sum(1 for p in chunks.rglob("*") if p.is_file() and not p.name.endswith(".partial"))


DUMP = [
    "dump",
    "--dataset",
    "fake:2000:10:16",
    "--teacher",
    "resnet8",
    "--teacher-init",
    "random",
    "--views",
    "2",
    "--seed",
    "11",
    "--chunk-samples",
    "128",
    "--batch-size",
    "64",
]
UNITS = 16 * 2  # 2000 samples in blocks of 128, 2 views


def start_dump(out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [console_script(), *DUMP, "--out", str(out), *extra],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_when(proc: subprocess.Popen[str], ready: object, delay: float) -> bool:
    """SIGKILL ``proc`` ``delay`` s after ``ready()`` turns true; False if it finished first."""
    deadline = time.monotonic() + 300
    while not ready() and proc.poll() is None:  # type: ignore[operator]
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("dump made no progress in 300 s")
        time.sleep(0.005)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return True


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    why = f"random kill points from seed {seed}"
    reference = tmp_path / "reference.zarr"
    ref = start_dump(reference, "--json")
    stdout, err = ref.communicate(timeout=600)
    assert ref.returncode == 0, err
    report = json.loads(stdout)
    unit_seconds = (report["seconds"] - report["setup_seconds"]) / UNITS

    # Markers lag the compute by at most the writes in flight (a few units), so a kill within
    # one unit's time of the 2nd/3rd threshold always lands before the dump's end.
    out = tmp_path / "killed.zarr"
    first, second = rng.randint(2, UNITS // 2 - 2), rng.randint(UNITS // 2, UNITS - 8)
    kill_points = [
        (lambda: (out / "zarr.json").is_file(), rng.uniform(0.0, 0.05)),  # while creating
        (lambda: done_units(out) >= first, rng.uniform(0.0, unit_seconds)),
        (lambda: done_units(out) >= second, rng.uniform(0.0, unit_seconds)),
    ]
    why += f", after {first} and {second} units, {unit_seconds:.3f} s per unit"
    progress = []
    for i, (ready, delay) in enumerate(kill_points):
        proc = start_dump(out, *(["--resume"] if i else []))
        killed = kill_when(proc, ready, delay)
        progress.append(done_units(out))
        if i > 0:
            assert killed and progress[-1] < UNITS, why
    info = run_cli("info", str(out), "--json")
    assert info.returncode == 0, info.stderr
    report = json.loads(info.stdout)
    assert report["logits"] == [] and not report["complete"], why
    assert report["raw_progress"]["done"] == progress[-1], why
    assert report["writer"]["purpose"] == "sortkd-cache dump"  # the dead writer's lock
    assert progress == sorted(progress), why  # resumes never lose finished units
    assert read_lock(out) is not None  # the killed writer's lock is stale, not released

    final = start_dump(out, "--resume")
    stdout, err = final.communicate(timeout=600)
    assert final.returncode == 0, err
    # the one line it says: it took over the killed writer's stale lock (issue 28 item 1)
    assert err.count("\n") == 1 and "took over the writer lock" in err, err
    assert "which no longer runs" in err, err
    assert f"({progress[-1]} already done)" in stdout, stdout
    assert not list(out.rglob("*.partial")), why
    assert read_lock(out) is None
    assert snapshot(out) == snapshot(reference), why
    assert sk.open_store(out).kinds() == ["raw"]


def test_resume_after_a_simulated_kill_is_bit_identical(tmp_path: Path) -> None:
    cfg = {
        "dataset": "fake:300:10:8",
        "teacher": "digits_mlp",
        "teacher_init": "random",
        "views": 3,
        "chunk_samples": 64,
        "progress": False,
        "device": "cpu",
        "dtype": "float16",
    }
    dump(DumpConfig(out=str(tmp_path / "ref.zarr"), **cfg))  # type: ignore[arg-type]
    out = tmp_path / "cut.zarr"
    dump(DumpConfig(out=str(out), **cfg))  # type: ignore[arg-type]
    # The state a kill leaves: some units unmarked (their chunks half there or stale),
    # half-written files, the lock of a dead process, the store not marked complete.
    store = sk.open_store(out, mode="r+")
    progress = store.raw_array("progress/raw")
    for b, v in [(1, 2), (3, 0), (4, 1), (4, 2)]:
        progress[b, v] = -1
    store.raw_array("logits/raw")[64:128, 2] = np.float16(7.0)  # stale content is redone
    (out / "logits" / "raw" / "c" / "3" / "0" / "0").unlink()
    (out / "logits" / "raw" / "c" / "4" / "1" / "0.1f2e.partial").write_bytes(b"\x00" * 9)
    (out / "zarr.abcd.partial").write_bytes(b"{")
    attrs = store.kind_attrs("raw")
    store.set_kind_attrs("raw", {**attrs, "complete": False})
    store.write_meta(store.meta.replace(complete=False, teacher_accuracy=()))
    (out / ".sortkd-lock.json").write_text(
        json.dumps({"host": os.uname().nodename, "pid": 2**22 + 12345, "since": "?"})
    )
    assert clean_partial_files(tmp_path / "nothing-here") == 0

    result = dump(DumpConfig(out=str(out), resume=True, **cfg))  # type: ignore[arg-type]
    assert (result.units_written, result.units_skipped) == (4, 5 * 3 - 4)
    assert not list(out.rglob("*.partial"))
    assert read_lock(out) is None
    assert snapshot(out) == snapshot(tmp_path / "ref.zarr")
