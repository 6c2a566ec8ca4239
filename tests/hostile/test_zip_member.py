"""Issue 21 item 2: one flipped byte inside a zip member is a checksum problem.

``verify`` still prints its report, with a ``[checksum]`` line naming the member (exit 1);
``train`` and ``copy`` stop with exit 2 and one line naming the member. The zip is unchanged
and ``copy`` leaves no destination behind.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest

from sortkd_cache.testing import invoke, one_error_line

from .conftest import tree_digest

MEMBER = "logits/sort/c/0/0/0"  # block 0, view 0 of the kind train reads: read in epoch 1


@pytest.fixture(scope="module")
def damaged(small_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small store as a zip (stored members) with one byte flipped inside MEMBER."""
    from sortkd_cache.store import copy_store

    out = tmp_path_factory.mktemp("zipmember") / "team.zip"
    copy_store(small_store, out, progress=False)
    with zipfile.ZipFile(out) as zf:
        info = zf.getinfo(MEMBER)
    raw = bytearray(out.read_bytes())
    name_len, extra_len = struct.unpack(
        "<HH", raw[info.header_offset + 26 : info.header_offset + 30]
    )
    raw[info.header_offset + 30 + name_len + extra_len + info.compress_size // 2] ^= 0x40
    out.write_bytes(bytes(raw))
    return out


def test_verify_reports_the_member_as_a_checksum_problem(damaged: Path) -> None:
    before = tree_digest(damaged)
    result = invoke("verify", str(damaged), "--no-progress")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    problems = [line for line in result.stdout.splitlines() if line.startswith("problem")]
    assert problems == [f"problem    [checksum] {MEMBER}: zip member failed its CRC-32 checksum"], (
        result.stdout
    )
    assert "verdict    NOT SOUND (1 problem)" in result.stdout
    assert tree_digest(damaged) == before


def test_train_and_copy_stop_with_one_line_naming_the_member(damaged: Path, tmp_path: Path) -> None:
    before = tree_digest(damaged)
    run = tmp_path / "run"
    args = ["--student", "digits_mlp", "--logits", "sort", "--epochs", "1", "--no-progress"]
    result = invoke("train", "--cache", str(damaged), *args, "--device", "cpu", "--out", str(run))
    one_error_line(result, f"zip member '{MEMBER}'", str(damaged), "CRC-32")
    for dst in ("copy.zarr", "copy.zip"):
        result = invoke("copy", str(damaged), str(tmp_path / dst), "--no-progress")
        one_error_line(result, f"zip member '{MEMBER}'", str(damaged), "CRC-32")
        assert not (tmp_path / dst).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["run"] if run.exists() else [])
    assert tree_digest(damaged) == before
