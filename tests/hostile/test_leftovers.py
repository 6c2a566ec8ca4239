"""Class 8: leftovers and noise.

``DST.partial-PID`` of a killed ``copy`` is named and removed by the next ``copy`` or
``verify`` (only when that PID no longer runs); a corrupted progress chunk ends in one error
line, without asyncio "Task was destroyed" lines; a click usage error ends with its
``error:`` line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sortkd_cache.testing import invoke, one_error_line, run_cli

from .conftest import tree_digest


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_next_copy_removes_a_killed_copys_partial(store: Path, tmp_path: Path) -> None:
    dead = _dead_pid()
    partial_dir = tmp_path / f"out.zarr.partial-{dead}"
    partial_dir.mkdir()
    (partial_dir / "zarr.json").write_text("{}")
    partial_zip = tmp_path / f"out.zip.partial-{dead}"
    partial_zip.write_bytes(b"PK half")
    alive = tmp_path / f"out.zarr.partial-{os.getppid()}"  # a live process: kept
    alive.mkdir()
    before = tree_digest(store)
    result = invoke("copy", str(store), str(tmp_path / "out.zarr"), "--no-progress")
    assert result.exit_code == 0, result.stderr
    assert f"removed '{partial_dir}', left by a killed copy (pid {dead}" in result.stdout
    assert not partial_dir.exists() and alive.exists()
    result = invoke("copy", str(store), str(tmp_path / "out.zip"), "--no-progress")
    assert result.exit_code == 0 and f"removed '{partial_zip}'" in result.stdout
    assert not partial_zip.exists()
    assert tree_digest(store) == before


def test_verify_names_and_removes_a_killed_copys_partial(store: Path, tmp_path: Path) -> None:
    dead = _dead_pid()
    partial = store.with_name(f"{store.name}.partial-{dead}")
    partial.mkdir()
    (partial / "labels").mkdir()
    before = tree_digest(store)
    result = invoke("verify", str(store), "--no-progress")
    assert result.exit_code == 0, result.stdout
    assert f"warning    removed '{partial}', left by a killed copy (pid {dead}" in result.stdout
    assert not partial.exists()
    assert tree_digest(store) == before


def test_an_old_store_moved_aside_is_kept_while_dst_is_missing(tmp_path: Path) -> None:
    from sortkd_cache.store import parse_location
    from sortkd_cache.store._leftovers import clean_stale_siblings

    dead = _dead_pid()
    old = tmp_path / f"s.zarr.old-{dead}"  # killed between the two renames of an overwrite
    old.mkdir()
    assert clean_stale_siblings(parse_location(tmp_path / "s.zarr")) == []
    assert old.exists()
    (tmp_path / "s.zarr").mkdir()
    assert len(clean_stale_siblings(parse_location(tmp_path / "s.zarr"))) == 1
    assert not old.exists()


@pytest.mark.slow
def test_a_corrupted_progress_chunk_is_one_line_without_asyncio_noise(tmp_path: Path) -> None:
    from sortkd_cache.pipelines.dump import DumpConfig, dump

    store = tmp_path / "s.zarr"  # many small chunks: many reads in flight when one fails
    cfg = {"teacher": "resnet8", "teacher_init": "random", "views": 2, "chunk_samples": 8}
    dump(DumpConfig(dataset="fake:3000:4:8", out=str(store), progress=False, **cfg))  # type: ignore[arg-type]
    chunk = store / "progress" / "raw" / "c" / "3" / "0"
    chunk.write_bytes(b"garbage-bytes-here")
    before = tree_digest(store)
    args = ["train", "--cache", str(store), "--student", "digits_mlp", "--epochs", "1"]
    args += ["--logits", "raw", "--out", str(tmp_path / "run"), "--device", "cpu"]
    proc = run_cli(*args, "--no-progress")
    one_error_line(proc, "progress/raw")
    assert "Task was destroyed" not in proc.stderr
    assert tree_digest(store) == before


def test_a_usage_error_is_one_line_with_a_hint() -> None:
    cases = {
        ("sort",): ("Missing argument 'STORE'", " sort --help')"),
        ("sort", "x", "--bogus"): ("--bogus", " sort --help')"),
        ("bogus",): ("'bogus'", " --help')"),
        ("train", "--epochs", "x"): ("--epochs", " train --help')"),
    }
    for args, names in cases.items():
        one_error_line(invoke(*args), *names)


def test_one_error_line_for_a_refused_value(store: Path) -> None:
    one_error_line(invoke("verify", str(store / "nothing")), "nothing")


def test_only_this_hosts_leftovers_are_removed(tmp_path: Path) -> None:
    """A shared filesystem: another host's ``.partial-HOST-PID`` may belong to a copy still
    running there, whatever this host's process table says."""
    from sortkd_cache.store import parse_location
    from sortkd_cache.store._leftovers import _host, clean_stale_siblings, sibling_path

    dead = _dead_pid()
    final = tmp_path / "s.zarr"
    assert sibling_path(final, "partial").name == f"s.zarr.partial-{_host()}-{os.getpid()}"
    mine = tmp_path / f"s.zarr.partial-{_host()}-{dead}"
    legacy = tmp_path / f"s.zarr.partial-{dead}"  # written before names carried the host
    other = tmp_path / f"s.zarr.partial-{_host()}x.example.org-{dead}"
    for path in (mine, legacy, other):
        path.mkdir()
    removed = clean_stale_siblings(parse_location(final))
    assert len(removed) == 2 and not mine.exists() and not legacy.exists()
    assert other.exists()
