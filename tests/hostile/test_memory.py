"""Class 5: hostile metadata answered without running out of memory, and named.

A declared shape of 1e12 rows (in an array's metadata, or consistently in the provenance
record, checksums recomputed as a hostile writer would): ``verify`` reports it under an
address-space limit instead of allocating per row, ``copy`` and ``train`` refuse it. A broken
array ``zarr.json``, an unknown codec or a non-numeric dtype: ``verify`` lists the file,
``info`` and ``train`` refuse with exit 2 naming it. ``dump --dataset fake:1e10:...`` is
refused up front.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sortkd_cache.testing import invoke, one_error_line

from .conftest import edit_json, tree_digest

HUGE = 10**12
HEADROOM = 1 << 30  # address space verify may add to what its imports mapped


def _huge_array(doc: dict[str, Any]) -> None:
    doc["shape"][0] = HUGE


def _huge_record(doc: dict[str, Any]) -> None:
    rec = doc["attributes"]["sortkd_cache"]
    rec["num_samples"] = rec["dataset"]["num_samples"] = HUGE


def _verify_limited(store: Path) -> subprocess.CompletedProcess[str]:
    """``verify --json`` in a process whose address space may grow by HEADROOM at most once
    everything is imported (the declared shape would need terabytes)."""
    code = (
        "import resource, sys\n"
        "import torch, zarr, numcodecs, google_crc32c, tqdm.auto\n"
        "import sortkd_cache.augment, sortkd_cache.store, sortkd_cache.cli.main\n"
        "import sortkd_cache.pipelines.copy\n"
        "status = open('/proc/self/status').read()\n"
        "size = int(status.split('VmSize:')[1].split()[0]) * 1024\n"
        f"resource.setrlimit(resource.RLIMIT_AS, (size + {HEADROOM}, size + {HEADROOM}))\n"
        "from sortkd_cache.cli.main import main\n"
        f"sys.argv = ['sortkd-cache', 'verify', {str(store)!r}, '--json']\n"
        "main()\n"
    )
    env = {**os.environ, "SORTKD_NO_PROGRESS": "1", "MALLOC_ARENA_MAX": "2"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
@pytest.mark.parametrize(
    ("node", "edit"),
    [
        ("logits/raw/zarr.json", _huge_array),
        ("progress/sort/zarr.json", _huge_array),
        ("labels/zarr.json", _huge_array),
        ("zarr.json", _huge_record),
    ],
)
def test_verify_of_a_huge_declared_shape_stays_within_memory(
    store: Path, node: str, edit: Any
) -> None:
    edit_json(store / node, edit, reseal=True)
    before = tree_digest(store)
    result = _verify_limited(store)
    assert result.returncode == 1, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert not report["sound"]
    categories = {p["category"] for p in report["problems"]}
    assert categories & {"shape", "limits"}, report["problems"]
    assert "MemoryError" not in result.stderr
    assert tree_digest(store) == before


@pytest.mark.parametrize(
    ("node", "edit", "named"),
    [
        ("logits/sort/zarr.json", _huge_array, "logits/sort"),
        ("zarr.json", _huge_record, "declares"),
    ],
)
def test_copy_and_train_refuse_a_huge_declared_shape(
    store: Path, tmp_path: Path, node: str, edit: Any, named: str
) -> None:
    edit_json(store / node, edit, reseal=True)
    before = tree_digest(store)
    one_error_line(invoke("copy", str(store), str(tmp_path / "c.zarr"), "--no-progress"), named)
    assert not (tmp_path / "c.zarr").exists()
    args = ["train", "--cache", str(store), "--student", "digits_mlp", "--epochs", "1"]
    args += ["--logits", "sort", "--out", str(tmp_path / "run"), "--device", "cpu"]
    one_error_line(invoke(*args, "--no-progress"), named)
    assert not (tmp_path / "run").exists()
    assert tree_digest(store) == before


def _broken_json(path: Path) -> None:
    path.write_text(path.read_text()[:-40])


def _unknown_codec(path: Path) -> None:
    edit_json(path, lambda d: d["codecs"].append({"name": "evil-codec"}), reseal=True)


def _string_dtype(path: Path) -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["data_type"] = "string"
        doc["fill_value"] = ""

    edit_json(path, edit, reseal=True)


@pytest.mark.parametrize("damage", [_broken_json, _unknown_codec, _string_dtype])
@pytest.mark.parametrize("array", ["labels", "logits/sort"])
def test_broken_array_metadata_is_named_by_verify_info_and_train(
    store: Path, tmp_path: Path, damage: Any, array: str
) -> None:
    from sortkd_cache.store import verify_store

    damage(store / array / "zarr.json")
    before = tree_digest(store)
    report = verify_store(store)
    found = [p for p in report.problems if p.array == array]
    assert found and found[0].chunk == "zarr.json", report.problems
    assert f"{array}/zarr.json" in str(found[0]) or found[0].category == "schema"
    result = invoke("verify", str(store), "--no-progress")
    assert result.exit_code == 1 and f"{array}/zarr.json" in result.stdout
    args = ["train", "--cache", str(store), "--student", "digits_mlp", "--epochs", "1"]
    args += ["--logits", "sort", "--out", str(tmp_path / "run"), "--device", "cpu"]
    one_error_line(invoke(*args, "--no-progress"), f"{array}/zarr.json")
    one_error_line(invoke("info", str(store)), f"{array}/zarr.json")
    assert tree_digest(store) == before


def test_a_fake_dataset_too_large_to_generate_is_refused_up_front(tmp_path: Path) -> None:
    args = ["dump", "--dataset", "fake:10000000000:10:8", "--teacher", "resnet8"]
    result = invoke(*args, "--out", str(tmp_path / "x.zarr"), "--no-progress")
    one_error_line(result, "fake:10000000000:10:8", "GiB limit")
    assert not (tmp_path / "x.zarr").exists()
