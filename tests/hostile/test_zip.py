"""Class 1: path traversal through ``copy`` of a crafted zip.

A zip holding a sound store plus one member whose name escapes (``../../x``, an absolute
path, ``a/../../../x``), in a plain and in a zip64 archive: ``copy`` refuses it before writing
anything (exit 2, one line naming the member), no file appears anywhere outside the
destination, and ``verify`` reports the member instead of calling the zip sound.
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import pytest

from sortkd_cache.testing import invoke, one_error_line

from .conftest import tree_digest


def _evil_zip(store: Path, path: Path, member: str, *, zip64: bool) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for file in sorted(p for p in store.rglob("*") if p.is_file()):
            name = file.relative_to(store).as_posix()
            if name.startswith(".sortkd-lock"):
                continue
            with zf.open(name, "w", force_zip64=zip64) as out:
                out.write(file.read_bytes())
        info = zipfile.ZipInfo(member)
        with zf.open(info, "w", force_zip64=zip64) as out:
            out.write(b"pwned")


def _names(tmp_path: Path) -> dict[str, str]:
    abs_target = tmp_path / "abs" / "pwned.txt"
    return {
        "relative": "../../pwned.txt",
        "absolute": str(abs_target),
        "middle": "logits/../../../pwned.txt",
        "deep": "a/b/../../../../../pwned.txt",
    }


@pytest.mark.parametrize("zip64", [False, True], ids=["zip", "zip64"])
@pytest.mark.parametrize("kind", ["relative", "absolute", "middle", "deep"])
def test_copy_of_a_crafted_zip_writes_nothing_anywhere(
    store: Path, tmp_path: Path, kind: str, zip64: bool
) -> None:
    member = _names(tmp_path)[kind]
    work = tmp_path / "w" / "x" / "y"
    work.mkdir(parents=True)
    evil = work / "evil.zip"
    _evil_zip(store, evil, member, zip64=zip64)
    if zip64:  # really zip64: every local header carries the zip64 extra field (id 1)
        raw = evil.read_bytes()
        with zipfile.ZipFile(evil) as zf:
            for info in zf.infolist():
                at = info.header_offset
                name_len, extra_len = struct.unpack("<HH", raw[at + 26 : at + 30])
                extra = raw[at + 30 + name_len : at + 30 + name_len + extra_len]
                assert extra[:2] == b"\x01\x00", info.filename
    assert member in zipfile.ZipFile(evil).namelist()
    before = tree_digest(tmp_path)
    for dst in ("out.zarr", "out.zip"):
        result = invoke("copy", str(evil), str(work / dst), "--no-progress")
        line = one_error_line(result, "evil.zip", member, "no key of a sortkd-cache store")
        assert "nothing was copied" in line
        assert tree_digest(tmp_path) == before  # nothing outside (nor inside) DST either
    assert not (tmp_path / "abs").exists()
    assert not list(tmp_path.rglob("pwned.txt"))


def test_verify_reports_a_crafted_member_instead_of_calling_the_zip_sound(
    store: Path, tmp_path: Path
) -> None:
    from sortkd_cache.store import verify_store

    evil = tmp_path / "evil.zip"
    _evil_zip(store, evil, "logits/../../../pwned.txt", zip64=False)
    before = tree_digest(evil)
    report = verify_store(evil)
    assert not report.sound
    assert [(p.category, p.chunk) for p in report.problems] == [
        ("foreign", "logits/../../../pwned.txt")
    ]
    result = invoke("verify", str(evil), "--no-progress")
    assert result.exit_code == 1
    assert "[foreign] logits/../../../pwned.txt: key is no part of the store layout" in (
        result.stdout
    )
    assert tree_digest(evil) == before


def test_a_stray_file_in_a_directory_store_is_reported_and_never_copied(
    store: Path, tmp_path: Path
) -> None:
    (store / "logits" / "notes.txt").write_text("mine")
    before = tree_digest(store)
    result = invoke("copy", str(store), str(tmp_path / "c.zarr"), "--no-progress")
    one_error_line(result, "logits/notes.txt")
    assert not (tmp_path / "c.zarr").exists()
    assert tree_digest(store) == before
    result = invoke("verify", str(store), "--no-progress")
    assert result.exit_code == 1 and "[foreign] logits/notes.txt" in result.stdout


@pytest.mark.parametrize(
    "key",
    [
        "labels/c/0/../../../x",
        "/etc/x",
        "labels/c/-1",
        "labels/c/0/0",  # one index too many for a 1-d array
        "logits/raw/c/0/0",
        "logits/bogus/zarr.json",
        "zarr.json/x",
        "labels\\c\\0",
        "",
    ],
)
def test_only_keys_of_the_schema_are_keys_of_a_store(key: str) -> None:
    from sortkd_cache.store._schema import is_schema_key

    assert not is_schema_key(key)


@pytest.mark.parametrize(
    "key",
    ["zarr.json", "logits/zarr.json", "labels/c/12", "logits/sort/c/3/1/0", "progress/raw/c/0/1"],
)
def test_keys_of_the_schema(key: str) -> None:
    from sortkd_cache.store._schema import is_schema_key

    assert is_schema_key(key)


def test_the_directory_writer_refuses_a_key_resolving_outside_its_partial(tmp_path: Path) -> None:
    from sortkd_cache.errors import StoreError
    from sortkd_cache.store import parse_location
    from sortkd_cache.store._copy_writers import make_writer

    writer = make_writer(parse_location(tmp_path / "d" / "out.zarr"), False, None)
    try:
        with pytest.raises(StoreError, match="outside"):
            writer.put_many([("../../escaped", b"x")])
        with pytest.raises(StoreError, match="outside"):
            writer.put_many([(os.fspath(tmp_path / "abs"), b"x")])
    finally:
        writer.abort()
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "abs").exists()
    assert sorted(os.listdir(tmp_path / "d")) == []
