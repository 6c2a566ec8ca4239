"""Issue 28 item 3: ``verify`` checks every derived kind against its raw rows.

The probe: a ``sort`` row edited after ``sort`` and written back through zarr (so its chunk's
crc32c checksum is valid) passed ``verify --recompute`` and was trained on. A derived row must
be its method applied to the raw row, bit for bit; plain ``verify`` now names it, exit 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import zarr

from sortkd_cache.testing import dump_and_sort, invoke, one_error_line, small_dump

from .conftest import tree_digest


def _edit_row(store: Path, path: str, sample: int, view: int) -> None:
    """Rewrite one row as a permutation of itself (a valid checksum: zarr re-encodes it)."""
    arr = zarr.open_group(str(store), mode="r+")[path]
    row = np.asarray(arr[sample, view])
    arr[sample, view] = np.roll(row, 1)
    assert not np.array_equal(np.asarray(arr[sample, view]), row)


def test_an_edited_sort_row_is_named_by_verify(store: Path) -> None:
    assert invoke("verify", str(store), "--no-progress").exit_code == 0
    _edit_row(store, "logits/sort", 37, 1)
    before = tree_digest(store)
    result = invoke("verify", str(store), "--no-progress")
    assert result.exit_code == 1, result.stdout
    problems = [line for line in result.stdout.splitlines() if line.startswith("problem")]
    assert len(problems) == 1, result.stdout
    assert "logits/sort: block 2, view 1" in problems[0] and "sample 37 " in problems[0]
    assert "not `sort` of the raw logits" in problems[0]
    as_json = json.loads(invoke("verify", str(store), "--json").stdout)
    assert [p["category"] for p in as_json["problems"]] == ["content"]
    assert tree_digest(store) == before


def test_an_edited_swap_row_is_named_and_honest_kinds_pass(store: Path) -> None:
    from sortkd_cache.pipelines.sort import SortConfig, sort_store

    sort_store(SortConfig(store=str(store), method="swap", progress=False, num_workers=1))
    assert invoke("verify", str(store), "--no-progress").exit_code == 0
    for sample in (3, 4, 60):
        _edit_row(store, "logits/swap", sample, 0)
    result = invoke("verify", str(store), "--no-progress")
    assert result.exit_code == 1
    assert "logits/swap: block 0, view 0" in result.stdout and "samples 3, 4 " in result.stdout
    assert "logits/swap: block 3, view 0" in result.stdout and "sample 60 " in result.stdout
    assert "logits/sort" not in result.stdout


def test_a_sparse_sort_row_with_its_ids_exchanged_is_named(tmp_path: Path) -> None:
    """Two kept entries' class ids exchanged: values still in rank order, label column
    intact, so only the comparison with the method applied to the raw row sees it."""
    store = dump_and_sort(tmp_path / "k.zarr", "fake:32:12:8", 16, topk=4)
    ids = zarr.open_group(str(store), mode="r+")["logits/sort/ids"]
    labels = np.asarray(zarr.open_group(str(store), mode="r")["labels"][...])
    row = np.asarray(ids[5, 0])
    assert int(row[0]) == labels[5]  # a sorted row: the label first, with the maximum
    row[[1, 2]] = row[[2, 1]]
    ids[5, 0] = row
    result = invoke("verify", str(store), "--no-progress")
    assert result.exit_code == 1, result.stdout
    assert "logits/sort: block 0, view 0" in result.stdout and "sample 5 " in result.stdout


def test_a_narrowed_copy_keeps_the_tie_rule(tmp_path: Path) -> None:
    """``copy --dtype float16`` of a float32 store: narrowing ties values, so the copy's
    sort kind is sort of its narrowed raw rows (what verify checks), not narrowed sort rows."""
    from sortkd_cache.sorting import sort_logits

    z = np.array([[1.0001, 1.0002, 0.5, 3.0]], np.float32)
    y = np.array([2])
    narrowed_after = sort_logits(z, y).astype(np.float16)
    assert not np.array_equal(narrowed_after, sort_logits(z.astype(np.float16), y))
    src = small_dump(tmp_path / "f32.zarr", dataset="fake:32:4:8", chunk_samples=16, views=2)
    raw = zarr.open_group(str(src), mode="r+")["logits/raw"]
    labels = np.asarray(zarr.open_group(str(src), mode="r")["labels"][...])
    rows = np.asarray(raw[:, 0])
    for i in range(len(rows)):  # every row: two classes that tie in float16, above the label
        others = [c for c in range(4) if c != labels[i]]
        rows[i, others] = [1.0001, 1.0002, 3.0]
        rows[i, labels[i]] = 0.5
    raw[:, 0] = rows
    from sortkd_cache.pipelines.sort import SortConfig, sort_store

    sort_store(SortConfig(store=str(src), method="sort", progress=False, num_workers=1))
    dst = tmp_path / "f16.zarr"
    result = invoke("copy", str(src), str(dst), "--dtype", "float16", "--no-progress")
    assert result.exit_code == 0, result.stderr
    assert invoke("verify", str(dst), "--no-progress").exit_code == 0


def test_recompute_refuses_a_checkpoint_for_a_random_teacher(store: Path, tmp_path: Path) -> None:
    """The probe: ``--teacher-ckpt`` on a store whose teacher was randomly initialised got a
    report blaming every row (exit 1); the checkpoint does not apply: exit 2, one line."""
    import torch

    from sortkd_cache.checkpoint import save_weights
    from sortkd_cache.models import create_model

    torch.set_num_threads(1)
    ckpt = tmp_path / "w.safetensors"
    save_weights(create_model("resnet8", num_classes=4, in_chans=3), ckpt)
    result = invoke("verify", str(store), "--recompute", "4", "--teacher-ckpt", str(ckpt))
    one_error_line(result, "--teacher-ckpt", "random", "without --teacher-ckpt")
