"""The sparse kind in a store: dump --topk, copy --topk/--views/--dtype, verify, info, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import sortkd_cache as sk
from sortkd_cache.errors import LogitsKindError, StoreError
from sortkd_cache.pipelines.copy import DeriveConfig, derive_store
from sortkd_cache.sparse import SparseSpec, compress
from sortkd_cache.store import verify_store
from sortkd_cache.testing import invoke, one_error_line, topk_store

MakeStore = Callable[..., Path]
FAST: dict[str, Any] = {"teacher": "digits_mlp", "views": 3}


def bits(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    out: np.ndarray[Any, Any] = a.view(np.uint8)
    return out


def same_rows(a: Any, b: Any) -> None:
    for name in ("ids", "values", "stats"):
        assert np.array_equal(bits(getattr(a, name)), bits(getattr(b, name))), name


def test_dump_topk_equals_the_dense_dump_truncated(make_store: MakeStore) -> None:
    dense = sk.open_store(make_store("d.zarr", **FAST))
    path = make_store("s.zarr", topk=3, **FAST)
    sparse = sk.open_store(path)
    assert sparse.meta.schema == 3 and sparse.is_sparse and sparse.kinds() == ["raw"]
    assert not (path / "logits" / "raw" / "c").exists()  # no dense chunk was ever written
    spec = sparse.sparse_spec
    assert spec == SparseSpec(3, 10, "float16")
    for v in range(dense.num_views):
        want = compress(dense.logits("raw")[:, v], dense.labels, spec)
        same_rows(sparse.sparse_logits("raw")[:, v], want)
    fid = sparse.kind_attrs("raw")["fidelity"]
    assert fid["k"] == 3 and len(fid["per_view"]) == 3
    assert all(p["rows"] == 200 for p in fid["per_view"])
    assert fid["mean_kl"]["1"] > 0 and 0 <= fid["label_outside_topk"] <= 1
    assert sparse.meta.teacher_accuracy == dense.meta.teacher_accuracy
    with pytest.raises(LogitsKindError, match="--topk 3"):
        sparse.logits("raw")
    assert verify_store(path).sound


def test_dump_topk_resume_must_keep_k(make_store: MakeStore, tmp_path: Path) -> None:
    path = make_store("s.zarr", topk=3, **FAST)
    with pytest.raises(StoreError, match=r"--topk 3.*--topk 4"):
        make_store("s.zarr", topk=4, resume=True, **FAST)
    proc = invoke(
        "dump", "--dataset", "fake:200:10:8", "--teacher", "digits_mlp", "--teacher-init", "random",
        "--views", "3", "--chunk-samples", "64", "--device", "cpu", "--out", str(path),
        "--resume",
    )  # fmt: skip
    one_error_line(proc, "dumped --topk 3")


@pytest.mark.parametrize("k", ["0", "10", "12"])
def test_dump_bad_k_exits_2(k: str, tmp_path: Path) -> None:
    proc = invoke(
        "dump", "--dataset", "fake:50:10:8", "--teacher", "digits_mlp", "--teacher-init", "random",
        "--views", "1", "--device", "cpu", "--out", str(tmp_path / "x.zarr"), "--topk", k,
    )  # fmt: skip
    one_error_line(proc, "--topk must be an integer >= 1, got 0" if k == "0" else f"--topk {k}")
    assert not (tmp_path / "x.zarr" / "zarr.json").exists()


def test_copy_topk_views_dtype(make_store: MakeStore, tmp_path: Path) -> None:
    src = make_store("d.zarr", dtype="float32", **FAST)
    sk_src = sk.open_store(src)
    out = tmp_path / "t.zip"
    cfg = DeriveConfig(topk=4, views="2,0", dtype="float16")
    result = derive_store(str(src), str(out), cfg, progress=False)
    assert result.verify.sound and result.src == str(src)
    dst = sk.open_store(out)
    assert dst.num_views == 2 and dst.meta.dtype == "float16" and dst.sparse_spec.k == 4
    (step,) = dst.meta.derivation
    assert step["views"] == [2, 0] and step["topk"] == 4 and step["source"] == str(src)
    assert step["source_store_id"] == sk_src.meta.store_id
    for new_v, old_v in enumerate([2, 0]):
        dense = sk_src.logits("raw")[:, old_v].astype(np.float16)
        same_rows(dst.sparse_logits("raw")[:, new_v], compress(dense, dst.labels, dst.sparse_spec))
        assert np.array_equal(dst.params(new_v), sk_src.params(old_v))
    acc = sk_src.meta.teacher_accuracy
    assert dst.meta.teacher_accuracy == (acc[2], acc[0])
    info = json.loads(invoke("info", str(out), "--json").stdout)
    assert info["sparse"]["k"] == 4 and info["sparse"]["bytes_per_sample_view"] == 4 * 3 + 14
    assert info["kinds"]["raw"]["fidelity"]["k"] == 4
    text = invoke("info", str(out)).stdout
    assert "top-4 of 10: 26 B/sample-view" in text and "fidelity: mean KL" in text


def test_copy_refusals_exit_2(make_store: MakeStore, tmp_path: Path) -> None:
    src = make_store("d.zarr", **FAST)
    sparse = tmp_path / "s.zarr"
    assert invoke("copy", str(src), str(sparse), "--topk", "3").exit_code == 0
    dst = str(tmp_path / "x.zarr")
    one_error_line(invoke("copy", str(src), dst, "--topk", "10"), "--topk 10")
    one_error_line(invoke("copy", str(src), dst, "--topk", "0"), "--topk must be an integer >= 1")
    one_error_line(invoke("copy", str(sparse), dst, "--topk", "2"), "already sparse")
    one_error_line(invoke("copy", str(src), dst, "--views", "0,7"), "--views '0,7'")
    one_error_line(invoke("copy", str(src), dst, "--dtype", "float32"), "")  # float16 source
    one_error_line(invoke("copy", str(src), str(sparse), "--topk", "2"), "already exists")
    assert not Path(dst).exists()


@pytest.mark.parametrize(
    "damage, needle",
    [
        ("ids_range", "class ids outside [0, 10)"),
        ("ids_dup", "appears twice"),
        ("label", "label's logit"),
    ],
)
def test_verify_checks_sparse_rows(make_store: MakeStore, damage: str, needle: str) -> None:
    path = make_store("s.zarr", topk=3, **FAST)
    group = zarr.open_group(str(path), mode="r+")
    if damage == "label":
        stats = group["logits/raw/stats"]
        row = stats[:64, 0]
        ids = group["logits/raw/ids"][:64, 0].astype(np.int64)
        labels = group["labels"][:64]
        hit = np.flatnonzero((ids == labels[:, None]).any(axis=1))[0]
        row[hit, 0] = row[hit, 0] + np.float16(1.0)
        stats[:64, 0] = row
    else:
        ids = group["logits/raw/ids"]
        row = ids[:64, 1]
        row[5, 0] = 200 if damage == "ids_range" else row[5, 1]
        ids[:64, 1] = row
    report = verify_store(path)
    assert not report.sound
    assert any(needle in str(p) for p in report.problems), report.problems


def test_dump_topk_resume_redoes_missing_chunks(make_store: MakeStore) -> None:
    ref = sk.open_store(make_store("ref.zarr", topk=3, **FAST))
    path = make_store("cut.zarr", topk=3, **FAST)
    cut = sk.open_store(path, mode="r+")
    progress = cut.raw_array("progress/raw")
    for b, v in [(0, 1), (2, 0)]:
        progress[b, v] = -1
    cut.raw_array("logits/raw/values")[:64, 1] = np.float16(7.0)  # stale content is redone
    cut.set_kind_attrs("raw", {**cut.kind_attrs("raw"), "complete": False, "fidelity": {}})
    cut.write_meta(cut.meta.replace(complete=False, teacher_accuracy=()))
    make_store("cut.zarr", topk=3, resume=True, **FAST)
    again = sk.open_store(path)
    for v in range(ref.num_views):
        same_rows(again.sparse_logits("raw")[:, v], ref.sparse_logits("raw")[:, v])
    assert again.kind_attrs("raw")["fidelity"] == ref.kind_attrs("raw")["fidelity"]
    assert again.meta.teacher_accuracy == ref.meta.teacher_accuracy


def test_info_marks_rank_k_as_k_or_more_only_for_sparse_made_statistics(
    make_store: MakeStore, tmp_path: Path
) -> None:
    from sortkd_cache.pipelines.sort import SortConfig, sort_store

    dense = make_store("d.zarr", **FAST)
    sort_store(SortConfig(store=str(dense), progress=False))  # statistics over all 10 ranks
    copied = tmp_path / "c.zarr"
    topk_store(dense, copied, 3)
    hist = sk.open_store(copied).kind_attrs("sort")["stats"]["rank_histogram"]
    assert max(int(r) for r in hist) > 3  # carried over from the dense rows
    line = next(x for x in invoke("info", str(copied)).stdout.splitlines() if "label rank" in x)
    assert "3+:" not in line and "3:" in line

    made = tmp_path / "m.zarr"
    derive_store(str(dense), str(made), DeriveConfig(topk=3, views="0"), progress=False)
    sort_store(SortConfig(store=str(made), progress=False, overwrite=True))
    line = next(x for x in invoke("info", str(made)).stdout.splitlines() if "label rank" in x)
    assert "3+:" in line


def test_copy_topk_is_the_same_for_any_number_of_workers(
    make_store: MakeStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks are derived on a thread pool: every data file of the copy (ids, values, stats,
    the per-chunk fidelity sums, progress) is byte-identical for 1 and 3 workers."""
    from sortkd_cache.pipelines.copy import _derive as derive

    src = make_store("d.zarr", **FAST)
    outs = []
    for workers in (1, 3):
        monkeypatch.setattr(derive, "_workers", lambda w=workers: w)
        out = tmp_path / f"t{workers}.zarr"
        topk_store(src, out, 3)
        outs.append(out)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    assert len(files) > 10
    for rel in files:
        if rel.name != "zarr.json":
            assert (outs[0] / rel).read_bytes() == (outs[1] / rel).read_bytes(), rel
    assert (
        sk.open_store(outs[0]).kind_attrs("raw")["fidelity"]
        == sk.open_store(outs[1]).kind_attrs("raw")["fidelity"]
    )
