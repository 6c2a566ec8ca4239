"""The hybrid sampled row (``--sample S --sample-head H``): the top H classes exact, S draws
from the rest. In a store: the same bytes for 1 and 2 workers, ``sort`` on hybrid rows equals
the hybrid of the sorted dense rows, ``verify`` finds a head class among the draws and counts
that do not sum to S, ``info`` states the bytes, training reads it; bad input exits 2 in one
line. (Its unbiasedness: tests/losses/test_sampled_losses.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sortkd_cache as sk
from sortkd_cache.pipelines.copy import DeriveConfig, derive_store
from sortkd_cache.pipelines.copy import _derive as derive
from sortkd_cache.sparse import SampledSpec, sample_rows, sampled_problems
from sortkd_cache.store import verify_store
from sortkd_cache.testing import invoke, one_error_line

from .test_sample import FAST, MakeStore, rows_of
from .test_sample import same_bits as same

torch.set_num_threads(1)
H, S = 3, 4  # digits: C = 10, so H + S < C
HYBRID = DeriveConfig(sample=S, sample_head=H)


@pytest.mark.parametrize("workers", [1, 2])
def test_copy_hybrid_is_the_same_store_for_1_and_2_workers(
    make_store: MakeStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """Also: each view is the hybrid of the dense rows (the top H in rank order, then the
    draws), and the record and info state H and the bytes."""
    dense = make_store("d.zarr", **FAST)
    monkeypatch.setattr(derive, "_workers", lambda: workers)
    out = tmp_path / f"c{workers}.zarr"
    derive_store(str(dense), str(out), HYBRID, progress=False)
    monkeypatch.setattr(derive, "_workers", lambda: 1)
    one = tmp_path / "c_ref.zarr"
    derive_store(str(dense), str(one), HYBRID, progress=False)
    a, b, d = sk.open_store(out), sk.open_store(one), sk.open_store(dense)
    spec, y = a.layout.spec, np.asarray(d.labels)
    assert isinstance(spec, SampledSpec) and (spec.head, spec.draws) == (H, S)
    for v in range(a.num_views):
        assert same(rows_of(a, "raw", v), rows_of(b, "raw", v))
        z = np.asarray(d.logits("raw")[:, v])
        want = sample_rows(z, y, spec, np.arange(len(y)), v)
        assert same(rows_of(a, "raw", v), want)
        top = np.argsort(-z.astype(np.float64), axis=1, kind="stable")[:, :H]
        assert np.array_equal(want.ids[:, :H], top)  # the head: the top H, exact
        assert want.ids.shape[1] == H + S and want.counts.shape[1] == S
    assert a.kind_attrs("raw")["fidelity"] == b.kind_attrs("raw")["fidelity"]
    assert verify_store(out).sound
    info = json.loads(invoke("info", str(out), "--json").output)["sparse"]
    assert info["head"] == H and info["bytes_per_sample_view"] == spec.bytes_per_row
    assert spec.bytes_per_row == H * (1 + 2) + S * (1 + 1 + 2 + 1) + spec.num_stats * 2
    assert "top 3 exact + 4 draws" in invoke("info", str(out)).output


def test_sort_on_hybrid_rows_equals_the_hybrid_of_the_sorted_rows(
    make_store: MakeStore, tmp_path: Path
) -> None:
    """float32 logits (no ties among the moved values)."""
    dense = make_store("d.zarr", dtype="float32", **FAST)
    hybrid = tmp_path / "raw.zarr"
    derive_store(str(dense), str(hybrid), HYBRID, progress=False)
    assert invoke("sort", str(hybrid)).exit_code == 0
    assert invoke("sort", str(dense)).exit_code == 0
    a, d = sk.open_store(hybrid), sk.open_store(dense)
    y, moved = np.asarray(d.labels), 0
    for v in range(a.num_views):
        z = np.asarray(d.logits("sort")[:, v])
        direct = sample_rows(z, y, a.layout.spec, np.arange(len(y)), v)
        assert same(rows_of(a, "sort", v), direct)
        moved += int((rows_of(a, "sort", v).ids != rows_of(a, "raw", v).ids).any(axis=1).sum())
    assert moved > 0  # the random teacher is wrong on most rows: head and draws moved
    assert verify_store(hybrid).sound


def test_verify_finds_a_head_class_drawn_and_counts_off_s() -> None:
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((20, 10)) * 3).astype(np.float16)
    y = rng.integers(0, 10, 20)
    spec = SampledSpec(draws=S, num_classes=10, head=H)
    rows = sample_rows(z, y, spec, np.arange(20), 0)
    assert sampled_problems(spec, rows, y) == []
    bad = rows[np.arange(20)]
    bad.ids[4, H] = bad.ids[4, 0]  # a head class among the draws
    assert "row 4: a class named twice (head or draws)" in sampled_problems(spec, bad, y)
    bad = rows[np.arange(20)]
    bad.counts[7, 0] += 1
    assert f"row 7: counts that do not sum to S={S}" in sampled_problems(spec, bad, y)
    bad = rows[np.arange(20)]
    bad.values[2, [0, 1]] = bad.values[2, [1, 0]]
    assert "row 2: a head not in descending order above the draws" in sampled_problems(spec, bad, y)


@pytest.mark.parametrize("loss", ["kd", "dkd", "lskd"])
def test_train_reads_a_hybrid_store(make_store: MakeStore, tmp_path: Path, loss: str) -> None:
    path = make_store("h.zarr", sample=S, sample_head=H, **FAST)
    assert verify_store(path).sound
    out = tmp_path / loss
    r = invoke("train", "--cache", str(path), "--student", "digits_mlp", "--loss", loss,
                "--epochs", "1", "--out", str(out))  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (out / "summary.json").is_file()


def test_bad_head_exits_2_in_one_line(make_store: MakeStore, tmp_path: Path) -> None:
    dense = make_store("d.zarr", **FAST)
    out = str(tmp_path / "x.zarr")
    copy: list[Any] = ["copy", str(dense), out, "--sample", "4"]
    one_error_line(invoke(*copy, "--sample-head", "-1"), "--sample-head -1 must be >= 0")
    one_error_line(invoke(*copy, "--sample-head", "10"), "below the number of classes (10)")
    one_error_line(invoke(*copy, "--sample-head", "6"), "names every one of the 10 classes")
    one_error_line(invoke("copy", str(dense), out, "--sample-head", "2"), "without --sample")
    base = ["dump", "--dataset", "digits", "--teacher", "digits_mlp", "--teacher-init",
            "random", "--views", "1", "--out", out, "--sample", "4"]  # fmt: skip
    one_error_line(invoke(*base, "--sample-head", "-3"), "--sample-head -3 must be >= 0")
    one_error_line(invoke(*base, "--sample-head", "8"), "names every one of the 10 classes")
    train = ["train", "--cache", str(dense), "--student", "digits_mlp", "--out", out]
    one_error_line(invoke(*train, "--sample", "4", "--sample-head", "-1"), "must be >= 0")
    one_error_line(invoke(*train, "--sample", "4", "--sample-head", "8"), "names every one")
    one_error_line(invoke(*train, "--sample-head", "2"), "without --sample")
