"""copy_store: raw bytes key by key, written aside, verified, then published."""

from __future__ import annotations

import json
import os
import socket
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sortkd_cache.errors import (
    CorruptChunkError,
    OutputError,
    StoreExistsError,
    StoreLockedError,
)
from sortkd_cache.store import _copy_writers as writers_module
from sortkd_cache.store import copy_store, open_store, verify_store
from sortkd_cache.testing import invoke

pytestmark = pytest.mark.fast


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name or ".old-" in p.name)


def test_dir_zip_dir_round_trip_is_byte_identical(base_store: Path, tmp_path: Path) -> None:
    to_zip = copy_store(base_store, tmp_path / "s.zip", progress=False)
    back = copy_store(tmp_path / "s.zip", tmp_path / "back.zarr", progress=False)
    original = _files(base_store)
    assert _files(tmp_path / "back.zarr") == original
    with zipfile.ZipFile(tmp_path / "s.zip") as zf:
        assert sorted(zf.namelist()) == sorted(original)
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
        assert all(zf.read(k) == v for k, v in original.items())
    assert to_zip.keys == back.keys == len(original)
    assert to_zip.bytes == back.bytes == sum(len(v) for v in original.values())
    assert (
        to_zip.verify.sound
        and back.verify.sound
        and back.verify.location == str(tmp_path / "back.zarr")
    )
    a, b = open_store(base_store), open_store(tmp_path / "back.zarr")
    for kind in ("raw", "sort"):
        np.testing.assert_array_equal(a.logits(kind)[:], b.logits(kind)[:])
    np.testing.assert_array_equal(a.labels, b.labels)
    assert _leftovers(tmp_path) == []
    assert json.loads(json.dumps(back.to_dict()))["verify"]["sound"] is True


def test_lock_and_partial_files_are_not_copied(store: Path, tmp_path: Path) -> None:
    # a lock left by a dead process (pid above pid_max) does not block the copy
    dead = {"host": socket.gethostname(), "pid": 2**22 + 12345, "since": "x", "purpose": "old"}
    (store / ".sortkd-lock.json").write_text(json.dumps(dead))
    (store / "labels" / "c" / "0.1234.partial").write_bytes(b"half")
    result = copy_store(store, tmp_path / "out.zarr", progress=False)
    copied = _files(tmp_path / "out.zarr")
    assert ".sortkd-lock.json" not in copied
    assert not [k for k in copied if ".partial" in k]
    assert result.verify.sound


def test_never_overwrites_without_permission(store: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst.zarr"
    copy_store(store, dst, progress=False)
    (dst / "marker.txt").write_text("old copy")
    with pytest.raises(StoreExistsError, match="--overwrite"):
        copy_store(store, dst, progress=False)
    assert (dst / "marker.txt").exists()
    copy_store(store, dst, overwrite=True, progress=False)
    assert not (dst / "marker.txt").exists() and verify_store(dst).sound
    zdst = tmp_path / "dst.zip"
    copy_store(store, zdst, progress=False)
    mtime = zdst.stat().st_mtime_ns
    with pytest.raises(StoreExistsError, match="--overwrite"):
        copy_store(dst, zdst, progress=False)
    assert zdst.stat().st_mtime_ns == mtime
    copy_store(dst, zdst, overwrite=True, progress=False)
    other = tmp_path / "not-a-store"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    with pytest.raises(OutputError, match="not a sortkd-cache store"):
        copy_store(store, other, overwrite=True, progress=False)
    assert (other / "thesis.tex").read_text() == "precious"
    assert _leftovers(tmp_path) == []


def test_corrupt_source_publishes_nothing(store: Path, tmp_path: Path) -> None:
    chunk = store / "logits" / "raw" / "c" / "1" / "1" / "0"
    data = bytearray(chunk.read_bytes())
    data[10] ^= 0x55
    chunk.write_bytes(bytes(data))
    for dst in (tmp_path / "bad.zarr", tmp_path / "bad.zip"):
        with pytest.raises(CorruptChunkError, match=r"logits/raw/c/1/1/0.*nothing was published"):
            copy_store(store, dst, progress=False)
        assert not dst.exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["int.zarr", "int.zip"])
def test_interrupted_copy_leaves_nothing(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    calls = {"n": 0}
    cls = writers_module._ZipWriter if name.endswith(".zip") else writers_module._DirWriter
    real = cls.put_many

    def flaky(self: Any, items: list[tuple[str, bytes]]) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real(self, items)

    monkeypatch.setattr(cls, "put_many", flaky)
    with pytest.raises(KeyboardInterrupt):
        copy_store(store, tmp_path / name, progress=False)
    assert not (tmp_path / name).exists()
    assert _leftovers(tmp_path) == []


def test_destination_appearing_mid_copy_is_not_clobbered(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dst = tmp_path / "race.zarr"
    real = writers_module._DirWriter.put_many

    def racing(self: Any, items: list[tuple[str, bytes]]) -> None:
        dst.mkdir(exist_ok=True)
        (dst / "other-writer.txt").write_text("first")
        real(self, items)

    monkeypatch.setattr(writers_module._DirWriter, "put_many", racing)
    with pytest.raises(StoreExistsError, match="appeared while copying"):
        copy_store(store, dst, progress=False)
    assert os.listdir(dst) == ["other-writer.txt"]
    assert _leftovers(tmp_path) == []


def test_refusals(store: Path, tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is the source"):
        copy_store(store, str(store) + "/", progress=False)
    (store / ".sortkd-lock.json").write_text(
        json.dumps(
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "since": "2026-01-01T00:00:00+00:00",
                "purpose": "sortkd-cache dump",
            }
        )
    )
    with pytest.raises(StoreLockedError, match=f"pid {os.getpid()}"):
        copy_store(store, tmp_path / "x.zarr", progress=False)


def test_progress_bar_shows_bytes_rate(
    base_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.delenv("SORTKD_NO_PROGRESS", raising=False)
    result = copy_store(base_store, tmp_path / "p.zip", progress=True)
    err = capsys.readouterr().err
    assert "B/s" in err and "100%" in err and "copy -> " in err
    assert result.bytes > 0


def test_cli_copy(base_store: Path, tmp_path: Path) -> None:
    dst = tmp_path / "cli.zip"
    result = invoke("copy", str(base_store), str(dst), "--no-progress")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("copied ") and "destination verified" in result.stdout
    result = invoke("copy", str(base_store), str(dst), "--no-progress")
    assert result.exit_code == 2 and "--overwrite" in result.stderr
    result = invoke("copy", str(dst), str(tmp_path / "cli.zarr"), "--json", "--overwrite")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["verify"]["sound"] and out["dst"] == str(tmp_path / "cli.zarr")
    help_text = invoke("copy", "--help").output
    assert "Examples:" in help_text and "s3://" in help_text and "--storage-option" in help_text
