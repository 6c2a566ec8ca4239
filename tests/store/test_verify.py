"""verify_store / quick_check: every chunk is read; each damaged chunk is named."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from sortkd_cache.errors import CorruptChunkError, SchemaError, StoreNotFoundError
from sortkd_cache.store import open_store, quick_check, verify_store
from sortkd_cache.testing import invoke

from .conftest import SPEC

pytestmark = pytest.mark.fast

CHUNK_CATEGORIES = {"checksum", "truncated", "corrupt", "content"}


def _chunk_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "/c/" in p.as_posix())


def _where(root: Path, path: Path) -> tuple[str, str]:
    array, key = path.relative_to(root).as_posix().split("/c/", 1)
    return array, f"c/{key}"


def _damaged(report: object) -> set[tuple[str | None, str | None]]:
    return {(p.array, p.chunk) for p in report.problems if p.category in CHUNK_CATEGORIES}  # type: ignore[attr-defined]


def test_sound_store_report(base_store: Path) -> None:
    report = verify_store(base_store)
    assert report.sound and report.problems == ()
    # 5 blocks x 2 views for aug_params, raw, sort and both progress arrays, 5 for labels
    assert report.chunks_checked == 5 * 2 * 5 + 5 == len(_chunk_files(base_store))
    assert set(report.arrays) == {
        "labels",
        "aug_params",
        "logits/raw",
        "logits/sort",
        "progress/raw",
        "progress/sort",
    }
    assert report.bytes_read == sum(p.stat().st_size for p in _chunk_files(base_store))
    d = report.to_dict()
    assert json.loads(json.dumps(d)) == d and d["sound"] is True
    quick_check(open_store(base_store))


@pytest.mark.parametrize("trial", range(4))
def test_random_damage_is_named_chunk_by_chunk(store: Path, trial: int) -> None:
    rng = np.random.default_rng(trial)
    files = _chunk_files(store)
    picked = [files[i] for i in rng.choice(len(files), size=4, replace=False)]
    for path in picked[:3]:  # flip one byte
        data = bytearray(path.read_bytes())
        data[int(rng.integers(len(data)))] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(data))
    cut = picked[3].read_bytes()  # truncate one
    picked[3].write_bytes(cut[: int(rng.integers(1, len(cut)))])
    report = verify_store(store)
    assert not report.sound
    assert _damaged(report) == {_where(store, p) for p in picked}
    for problem in report.problems:
        if problem.chunk is not None:
            assert problem.chunk in str(problem) and problem.array in str(problem)


def test_cli_verify_lists_each_damaged_chunk_and_exits_1(store: Path) -> None:

    damaged = [store / "logits/raw/c/1/0/0", store / "aug_params/c/4/1/0"]
    for path in damaged:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    result = invoke("verify", str(store), "--no-progress")
    assert result.exit_code == 1, result.output
    assert "NOT SOUND (2 problems)" in result.output
    assert "logits/raw/c/1/0/0" in result.output and "aug_params/c/4/1/0" in result.output
    result = invoke("verify", str(store), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert {(p["array"], p["chunk"]) for p in report["problems"]} == {
        ("logits/raw", "c/1/0/0"),
        ("aug_params", "c/4/1/0"),
    }


def test_train_refuses_a_corrupted_store(store: Path, tmp_path: Path) -> None:

    path = store / "logits/sort/c/0/0/0"  # read by the first epoch (view 0)
    path.write_bytes(path.read_bytes()[:-7])
    opts = "--student resnet8 --logits sort --loss kd --epochs 1 --device cpu --no-progress"
    args = ["train", "--cache", str(store), *opts.split(), "--milestones", ""]
    result = invoke(*args, "--out", str(tmp_path / "run"))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "logits/sort" in lines[0]


def test_missing_chunks_partial_files_and_locks(store: Path) -> None:
    (store / "logits/raw/c/2/1/0").unlink()
    (store / "labels/c/3").unlink()
    (store / "logits/sort/c/0/0/0.3f9a.partial").write_bytes(b"half")
    (store / ".sortkd-lock.json").write_text(
        json.dumps(
            {
                "host": "elsewhere",
                "pid": 1,
                "since": "2026-01-01T00:00:00+00:00",
                "purpose": "sortkd-cache sort",
            }
        )
    )
    report = verify_store(store)
    found = {(p.category, p.array, p.chunk) for p in report.problems}
    assert ("missing", "logits/raw", "c/2/1/0") in found
    assert ("missing", "labels", "c/3") in found
    assert ("partial", None, "logits/sort/c/0/0/0.3f9a.partial") in found
    assert any("elsewhere" in w and "sortkd-cache sort" in w for w in report.warnings)


def test_unfinished_stage_is_one_problem_not_one_per_chunk(store: Path) -> None:
    open_store(store, "r+").set_kind_attrs("sort", {"complete": False})
    for key in ("c/1/0", "c/1/1", "c/2/0"):
        (store / "progress/sort" / key).unlink()
    for key in ("c/1/0/0", "c/1/1/0", "c/2/0/0"):
        (store / "logits/sort" / key).unlink()
    report = verify_store(store)
    assert [(p.category, p.array) for p in report.problems] == [("progress", "logits/sort")]
    assert "7/10 chunks" in report.problems[0].message
    quick_check(open_store(store))  # training from 'raw' is not affected
    with pytest.raises(CorruptChunkError, match="'sort' incomplete"):
        quick_check(open_store(store), ["sort"])


def test_progress_marker_lost_from_a_finished_stage(store: Path) -> None:
    (store / "progress/raw/c/4/1").unlink()
    report = verify_store(store)
    cats = {(p.category, p.array, p.chunk) for p in report.problems}
    assert ("missing", "progress/raw", "c/4/1") in cats
    assert ("progress", "logits/raw", None) in cats
    with pytest.raises(CorruptChunkError, match="only 9/10 chunks"):
        quick_check(open_store(store))


def _edit_json(path: Path, edit: object) -> None:
    """Edit a node's metadata and re-seal its checksum, as a writer with a bug would: the
    checks behind the checksum still catch what is wrong."""
    from sortkd_cache.store._integrity import DIGEST_KEY, node_digest

    meta = json.loads(path.read_text())
    edit(meta)  # type: ignore[operator]
    meta["attributes"][DIGEST_KEY] = node_digest(meta)
    path.write_text(json.dumps(meta))


def test_shape_and_provenance_problems(store: Path) -> None:
    _edit_json(store / "aug_params/zarr.json", lambda m: m.update(shape=[150, 2, 4]))
    _edit_json(
        store / "zarr.json",
        lambda m: m["attributes"]["sortkd_cache"]["dataset"].update(fingerprint="not-a-hash"),
    )
    report = verify_store(store)
    messages = [(p.category, str(p)) for p in report.problems]
    assert ("shape", "aug_params: shape (150, 2, 4), metadata says (150, 2, 5)") in messages
    assert any(c == "provenance" and "not-a-hash" in m for c, m in messages)
    with pytest.raises(SchemaError, match="failed its check"):
        quick_check(open_store(store))


def test_missing_array_and_unreadable_attributes(store: Path) -> None:
    shutil.rmtree(store / "logits/sort")
    report = verify_store(store)
    assert [(p.category, str(p)) for p in report.problems] == [
        ("schema", "logits/sort: array is missing")
    ]
    _edit_json(store / "zarr.json", lambda m: m["attributes"]["sortkd_cache"].pop("num_views"))
    report = verify_store(store)
    assert [p.category for p in report.problems] == ["schema"]
    assert "num_views" in report.problems[0].message


def test_newer_schema_and_non_stores_raise(store: Path, tmp_path: Path) -> None:

    with pytest.raises(StoreNotFoundError):
        verify_store(tmp_path / "nothing.zarr")
    _edit_json(store / "zarr.json", lambda m: m["attributes"]["sortkd_cache"].update(schema=99))
    with pytest.raises(SchemaError, match="upgrade sortkd-cache"):
        verify_store(store)
    result = invoke("verify", str(store))
    assert result.exit_code == 2 and result.stderr.startswith("error: store schema 99")


def test_dataset_fingerprint(base_store: Path) -> None:
    report = verify_store(base_store, dataset=SPEC)
    assert report.sound and report.fingerprint_checked
    report = verify_store(base_store, dataset="fake:150:10:9")
    assert [p.category for p in report.problems] == ["fingerprint"]
    assert "fake:150:10:9" in report.problems[0].message


def test_verify_of_a_zip_reads_members_by_key(base_store: Path, tmp_path: Path) -> None:
    from sortkd_cache.store import copy_store

    copy_store(base_store, tmp_path / "s.zip", progress=False)
    before = set(os.listdir(tmp_path))
    report = verify_store(tmp_path / "s.zip")
    assert report.sound and report.chunks_checked == 55
    assert set(os.listdir(tmp_path)) == before  # nothing extracted


def test_unexpected_codecs_are_a_schema_problem(store: Path) -> None:
    def drop_checksum(meta: dict) -> None:  # type: ignore[type-arg]
        meta["codecs"] = [c for c in meta["codecs"] if c["name"] != "crc32c"]

    _edit_json(store / "labels/zarr.json", drop_checksum)
    report = verify_store(store)
    schema = [str(p) for p in report.problems if p.category == "schema"]
    assert len(schema) == 1 and schema[0].startswith("labels: codecs ['BytesCodec', 'ZstdCodec']")
    with pytest.raises(SchemaError, match="labels: codecs"):
        quick_check(open_store(store))


def test_a_sort_out_store_without_raw_logits_is_sound(base_store: Path, tmp_path: Path) -> None:
    from sortkd_cache.pipelines.sort import SortConfig, sort_store

    out = tmp_path / "swap.zarr"
    sort_store(SortConfig(store=str(base_store), method="swap", out=str(out), progress=False))
    store = open_store(out)
    assert store.kinds() == ["swap"]
    quick_check(store)
    quick_check(store, ["swap"])
    with pytest.raises(SchemaError, match="logits/raw: array is missing"):
        quick_check(store, ["raw"])
    assert verify_store(out).sound
