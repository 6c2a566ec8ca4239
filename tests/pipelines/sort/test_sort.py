"""The sort stage over a store: exact, resumable, idempotent, statistics, --out; old stores with
the retired top-k side copy."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sortkd_cache import open_store
from sortkd_cache.errors import ConfigError, LogitsKindError
from sortkd_cache.locks import LOCK_NAME
from sortkd_cache.pipelines.sort import SortConfig, sort_store, written_chunks
from sortkd_cache.pipelines.sort import _stage as sort_mod
from sortkd_cache.sorting import label_rank, sort_logits, swap_logits
from sortkd_cache.testing import invoke, one_error_line, topk_store


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint16 if a.dtype == np.float16 else np.uint32)


@pytest.mark.parametrize(("method", "fn"), [("sort", sort_logits), ("swap", swap_logits)])
def test_stage_equals_kernel_on_whole_array(make_store, method, fn) -> None:
    path = make_store()
    raw_before = open_store(path).logits("raw")[...].copy()
    result = sort_store(SortConfig(store=str(path), method=method, progress=False))
    store = open_store(path)
    raw = store.logits("raw")[...]
    assert np.array_equal(_bits(raw), _bits(raw_before))  # raw untouched
    labels = np.broadcast_to(store.labels[:, None], raw.shape[:2])
    expected = fn(raw, labels)
    got = store.logits(method)[...]
    assert got.dtype == raw.dtype == np.float16
    assert np.array_equal(_bits(got), _bits(expected))
    assert store.kinds() == ["raw", method]
    assert result.chunks_written == result.chunks_total == store.num_blocks * store.num_views
    # statistics: rows changed per view = rows whose label does not hold the max
    ranks = label_rank(raw, labels)
    stats = store.kind_attrs(method)["stats"]
    assert stats["changed_rows"] == [int((ranks[:, v] > 0).sum()) for v in range(3)]
    hist = stats["rank_histogram"]
    assert sum(hist.values()) == raw.shape[0] * raw.shape[1]
    assert hist.get("0", 0) == int((ranks == 0).sum())
    assert sum(c["count"] for c in stats["top_confusions"]) <= int((ranks > 0).sum())
    # progress/<method>: rows changed per (block, view) chunk, written at completion
    blocks = [(ranks[b * 64 : (b + 1) * 64] > 0).sum(axis=0) for b in range(store.num_blocks)]
    np.testing.assert_array_equal(store.progress(method), np.array(blocks))


def test_chunks_and_checksums_match_raw(make_store) -> None:
    path = make_store()
    sort_store(SortConfig(store=str(path), progress=False))
    store = open_store(path)
    sort_arr = store.raw_array("logits/sort")
    raw_arr = store.raw_array("logits/raw")
    assert sort_arr.chunks == raw_arr.chunks == (64, 1, 10)
    codecs = [c["name"] for c in sort_arr.metadata.to_dict()["codecs"]]
    assert "crc32c" in codecs


def test_rerun_is_noop_unless_overwrite(make_store) -> None:
    path = make_store()
    sort_store(SortConfig(store=str(path), progress=False))
    again = sort_store(SortConfig(store=str(path), progress=False))
    assert again.skipped and again.chunks_written == 0
    redo = sort_store(SortConfig(store=str(path), progress=False, overwrite=True))
    assert not redo.skipped and redo.chunks_written == redo.chunks_total


def test_interrupted_run_resumes_to_same_result(make_store, monkeypatch) -> None:
    a = make_store("a.zarr")
    b = make_store("b.zarr")
    sort_store(SortConfig(store=str(a), progress=False))

    real = sort_mod._sort_chunk
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] > 4:
            raise RuntimeError("simulated crash")
        return real(*args, **kw)

    monkeypatch.setattr(sort_mod, "_sort_chunk", flaky)
    with pytest.raises(RuntimeError, match="simulated crash"):
        sort_store(SortConfig(store=str(b), progress=False, num_workers=1))
    monkeypatch.setattr(sort_mod, "_sort_chunk", real)
    partial = open_store(b)
    assert "sort" not in partial.kinds()
    done = int(written_chunks(partial, "sort").sum())  # the chunks are the progress record
    assert done == 4
    assert (partial.progress("sort") < 0).all()  # the counts come with completion
    # a chunk write killed half-way leaves only a temporary file, which the resume removes
    half = b / "logits" / "sort" / "c" / "3" / "0" / "0.deadbeef.partial"
    half.parent.mkdir(parents=True, exist_ok=True)
    half.write_bytes(b"\x00" * 7)
    resumed = sort_store(SortConfig(store=str(b), progress=False))
    assert not half.exists()
    assert resumed.chunks_written == resumed.chunks_total - done
    sa, sb = open_store(a), open_store(b)
    assert np.array_equal(_bits(sa.logits("sort")[...]), _bits(sb.logits("sort")[...]))
    assert sa.kind_attrs("sort")["stats"] == sb.kind_attrs("sort")["stats"]


def test_out_writes_new_store_and_leaves_source(make_store, tmp_path: Path) -> None:
    src = make_store()
    before = sorted(p.relative_to(src) for p in src.rglob("*") if p.is_file())
    out = tmp_path / "sorted.zarr"
    sort_store(SortConfig(store=str(src), out=str(out), progress=False))
    after = sorted(p.relative_to(src) for p in src.rglob("*") if p.is_file())
    assert before == after
    s, o = open_store(src), open_store(out)
    assert o.kinds() == ["sort"]
    assert np.array_equal(o.labels, s.labels)
    assert o.meta.dataset == s.meta.dataset and o.meta.teacher == s.meta.teacher
    for v in range(s.num_views):
        assert np.array_equal(o.params(v), s.params(v))
    labels = np.broadcast_to(s.labels[:, None], (s.num_samples, s.num_views))
    assert np.array_equal(
        _bits(o.logits("sort")[...]), _bits(sort_logits(s.logits("raw")[...], labels))
    )
    with pytest.raises(LogitsKindError):
        o.logits("raw")


def _write_legacy_topk(store_path: Path, kind: str, k: int) -> None:
    """What the retired ``sort --topk K`` wrote beside a dense kind (the previous version's
    writer, kept here only to make such a store): ids, values and rest arrays in
    ``logits/<kind>_topk`` and a ``topk`` record in the kind's attributes."""
    store = open_store(store_path, "r+")
    n, v, c, s = store.num_samples, store.num_views, store.num_classes, store.chunk_samples
    dense = store.logits(kind)[...]
    order = np.argsort(-dense.astype(np.float32), axis=-1, kind="stable")[..., :k]
    base = f"logits/{kind}_topk"
    store.create_array(f"{base}/ids", (n, v, k), (s, 1, k), "uint8", 0, attributes={"k": k})
    store.create_array(f"{base}/values", (n, v, k), (s, 1, k), store.meta.dtype, float("nan"))
    store.create_array(f"{base}/rest", (n, v), (s, 1), "float32", float("nan"))
    store.raw_array(f"{base}/ids")[...] = order.astype(np.uint8)
    store.raw_array(f"{base}/values")[...] = np.take_along_axis(dense, order, axis=-1)
    store.raw_array(f"{base}/rest")[...] = np.zeros((n, v), dtype=np.float32)
    attrs = store.kind_attrs(kind)
    attrs["topk"] = {"k": k, "bytes_per_sample_view": 3 * k + 4,
                     "dense_bytes_per_sample_view": 2 * c, "mean_kl_t4": 0.1,
                     "max_kl_t4": 0.5, "rows_checked": n}  # fmt: skip
    store.set_kind_attrs(kind, attrs)


def test_a_store_with_the_retired_topk_copy_still_opens_verifies_and_copies(
    make_store, tmp_path: Path
) -> None:
    """Stores written before ``sort --topk`` was retired hold ``logits/sort_topk``: they are
    not corrupt, `info` names the legacy copy, and copies (plain or re-sliced) work."""
    from sortkd_cache.store import copy_store, verify_store

    path = make_store()
    sort_store(SortConfig(store=str(path), progress=False))
    _write_legacy_topk(path, "sort", 4)
    report = verify_store(path)
    assert report.sound, report.problems
    info = invoke("info", str(path))
    assert info.exit_code == 0, info.stderr
    assert "legacy top-4 side copy (retired `sort --topk`)" in info.stdout
    copy_store(path, tmp_path / "plain.zarr", progress=False)
    assert verify_store(tmp_path / "plain.zarr").sound
    topk_store(path, tmp_path / "top3.zarr", 3)
    top3 = open_store(tmp_path / "top3.zarr")
    assert top3.is_sparse and top3.kinds() == ["raw", "sort"]
    assert not top3.has_array("logits/sort_topk/ids")


def test_cli_sort_topk_is_retired_and_points_at_copy(make_store) -> None:
    path = make_store()
    proc = invoke("sort", str(path), "--topk", "4")
    one_error_line(proc, "sortkd-cache copy")
    assert "--topk 4" in proc.stderr and "retired" in proc.stderr
    assert open_store(path).kinds() == ["raw"]  # nothing written


def test_bad_method(make_store) -> None:
    path = make_store()
    with pytest.raises(ConfigError, match="unknown --method 'sorted'"):
        sort_store(SortConfig(store=str(path), method="sorted", progress=False))


def test_cli_sort_json_and_info(make_store) -> None:
    path = make_store()
    proc = invoke("sort", str(path), "--json")
    assert proc.exit_code == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["method"] == "sort" and not out["skipped"]
    info = json.loads(invoke("info", str(path), "--json").stdout)
    assert info["logits"] == ["raw", "sort"]
    assert "changed_fraction" in info["kinds"]["sort"]["stats"]
    text = invoke("info", str(path)).stdout
    assert "rows changed per view" in text


def test_cli_bad_inputs(make_store, tmp_path: Path) -> None:
    path = make_store()
    one_error_line(invoke("sort", str(path), "--method", "median"), "unknown --method 'median'")
    # a store whose dump never finished has no complete raw logits
    store = open_store(path, "r+")
    store.set_kind_attrs("raw", {"kind": "raw", "complete": False})
    one_error_line(invoke("sort", str(path)), "no complete 'raw' logits")
    store.set_kind_attrs("raw", {"kind": "raw", "complete": True})
    # labels out of range
    labels = store.raw_array("labels")
    labels[3] = 42
    one_error_line(invoke("sort", str(path)), "label 42 of sample 3")
    labels[3] = 1


def test_cli_refuses_store_being_written(make_store) -> None:
    path = make_store()
    holder = subprocess.Popen(["sleep", "30"])
    try:
        (path / LOCK_NAME).write_text(
            json.dumps(
                {
                    "host": __import__("socket").gethostname(),
                    "pid": holder.pid,
                    "since": "2026-01-01T00:00:00+00:00",
                    "purpose": "sortkd-cache dump",
                }
            )
        )
        proc = invoke("sort", str(path))
        one_error_line(proc, f"pid {holder.pid}")
        assert "being written by sortkd-cache dump" in proc.stderr
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale and taken over
    proc = invoke("sort", str(path))
    assert proc.exit_code == 0, proc.stderr
    assert not (path / LOCK_NAME).exists()


def test_bad_scheduler_is_refused_before_anything_is_overwritten(make_store) -> None:
    path = make_store()
    sort_store(SortConfig(store=str(path), progress=False))
    before = open_store(path).logits("sort")[...].copy()
    proc = invoke("sort", str(path), "--overwrite", "--scheduler", "notanaddress")
    one_error_line(proc, "bad Dask scheduler address 'notanaddress'")
    after = open_store(path)
    assert after.kinds() == ["raw", "sort"]
    assert np.array_equal(_bits(after.logits("sort")[...]), _bits(before))
