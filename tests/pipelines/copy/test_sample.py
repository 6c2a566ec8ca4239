"""The sampled kind in a store: dump --sample, copy --sample, sort, verify, info, train, and
the bad inputs (each exit 2 with one line)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sortkd_cache as sk
from sortkd_cache.pipelines.copy import DeriveConfig, derive_store
from sortkd_cache.pipelines.copy import _derive as derive
from sortkd_cache.sparse import SampledRows, SampledSpec, sample_rows
from sortkd_cache.store import verify_store
from sortkd_cache.testing import invoke, one_error_line

torch.set_num_threads(1)
MakeStore = Callable[..., Path]
FAST: dict[str, Any] = {"teacher": "digits_mlp", "views": 2, "dataset": "digits"}
S = 12


def rows_of(store: sk.CacheStore, kind: str, view: int, rows_type: type = SampledRows) -> Any:
    """A whole view of a kind, as one rows object of ``rows_type`` (any layout's rows with
    ``arrays()``)."""
    data = store.kind_array(kind)
    parts = [data.read_block(b, view) for b in range(store.num_blocks)]
    return rows_type(*(np.concatenate(a) for a in zip(*(p.arrays() for p in parts), strict=True)))


def same_bits(a: Any, b: Any) -> bool:
    return all(
        np.array_equal(x.view(np.uint8), y.view(np.uint8))
        for x, y in zip(a.arrays(), b.arrays(), strict=True)
    )


@pytest.fixture
def dense(make_store: MakeStore) -> Path:
    path = make_store("d.zarr", **FAST)
    assert invoke("sort", str(path)).exit_code == 0
    return path


def test_dump_sample_equals_sampling_the_dense_rows(dense: Path, make_store: MakeStore) -> None:
    """dump --sample S writes what sampling the dense dump gives (the draws are keyed by the
    store's seed, the sample and the view only), and a store made in chunks of another size
    is the same bit for bit."""
    made = make_store("s.zarr", sample=S, **FAST)
    other = make_store("s32.zarr", sample=S, chunk_samples=32, **FAST)
    d, s, s32 = sk.open_store(dense), sk.open_store(made), sk.open_store(other)
    spec = s.layout.spec
    assert isinstance(spec, SampledSpec) and spec.draws == S and spec.seed == d.meta.seed
    y = np.asarray(d.labels)
    for v in range(d.num_views):
        want = sample_rows(np.asarray(d.logits("raw")[:, v]), y, spec, np.arange(len(y)), v)
        assert same_bits(rows_of(s, "raw", v), want)
        assert same_bits(rows_of(s32, "raw", v), want)
        assert (want.counts.astype(int).sum(axis=1) == S).all()
    assert verify_store(made).sound


@pytest.mark.parametrize("workers", [1, 2])
def test_copy_sample_is_the_same_store_for_1_and_2_workers(
    dense: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(derive, "_workers", lambda: workers)
    out = tmp_path / f"c{workers}.zarr"
    derive_store(str(dense), str(out), DeriveConfig(sample=S), progress=False)
    one = tmp_path / "c_ref.zarr"
    monkeypatch.setattr(derive, "_workers", lambda: 1)
    derive_store(str(dense), str(one), DeriveConfig(sample=S), progress=False)
    a, b = sk.open_store(out), sk.open_store(one)
    assert a.kinds() == b.kinds() == ["raw", "sort"]
    for kind in a.kinds():
        for v in range(a.num_views):
            assert same_bits(rows_of(a, kind, v), rows_of(b, kind, v))
    assert a.kind_attrs("raw")["fidelity"] == b.kind_attrs("raw")["fidelity"]
    assert verify_store(out).sound


def test_sort_on_sampled_rows_equals_sampling_the_sorted_rows(
    make_store: MakeStore, tmp_path: Path
) -> None:
    """``sort`` on a sampled store gives the rows that ``copy --sample`` takes from the sorted
    dense store, bit for bit (the same draws, moved with their values). float32 logits: with
    tied logits a draw may land on another class of the same value (docs/sparse.md)."""
    dense = make_store("d.zarr", dtype="float32", **FAST)
    sampled = tmp_path / "raw.zarr"
    derive_store(str(dense), str(sampled), DeriveConfig(sample=S), progress=False)
    r = invoke("sort", str(sampled))
    assert r.exit_code == 0, r.output
    assert invoke("sort", str(dense)).exit_code == 0
    from_sorted = tmp_path / "both.zarr"
    derive_store(str(dense), str(from_sorted), DeriveConfig(sample=S), progress=False)
    a, b, d = sk.open_store(sampled), sk.open_store(from_sorted), sk.open_store(dense)
    changed, y = 0, np.asarray(d.labels)
    for v in range(a.num_views):
        assert same_bits(rows_of(a, "sort", v), rows_of(b, "sort", v))
        spec, index = a.layout.spec, np.arange(len(y))
        direct = sample_rows(np.asarray(d.logits("sort")[:, v]), y, spec, index, v)
        assert same_bits(rows_of(a, "sort", v), direct)  # sampling the sorted rows
        changed += int((rows_of(a, "sort", v).ids != rows_of(a, "raw", v).ids).any(axis=1).sum())
    assert changed > 0  # the random teacher is wrong on most rows: the draws moved
    assert verify_store(sampled).sound
    one_error_line(invoke("sort", str(sampled), "--method", "swap"), "'swap' cannot be applied")


def test_info_states_bytes_and_fidelity(make_store: MakeStore) -> None:
    path = make_store("s.zarr", sample=S, **FAST)
    info = json.loads(invoke("info", str(path), "--json").output)
    shown = ("bytes_per_sample_view", "summary", "rank_cap")  # info's, not the record's
    spec = SampledSpec.from_dict({k: v for k, v in info["sparse"].items() if k not in shown})
    assert info["sparse"]["bytes_per_sample_view"] == spec.bytes_per_row
    assert spec.bytes_per_row == 10 * (1 + 1 + 2 + 1) + spec.num_stats * 2  # W = min(12, 10)
    fid = info["kinds"]["raw"]["fidelity"]
    assert fid["rows"] == 2 * sk.open_store(path).num_samples
    assert fid["mean_kl"] > 0 and 0 <= fid["grad_angle_deg"] <= 180
    text = invoke("info", str(path)).output
    assert "B/sample-view" in text and "gradient angle" in text
    assert invoke("sort", str(path)).exit_code == 0  # a sort of the draws: ranks 0 or "1+"
    text = invoke("info", str(path)).output
    assert "label rank before sort (rank:rows): 0:" in text and ", 1+:" in text


@pytest.mark.parametrize("loss", ["kd", "dkd", "lskd"])
def test_train_reads_a_sampled_store(make_store: MakeStore, tmp_path: Path, loss: str) -> None:
    path = make_store("s.zarr", sample=S, **FAST)
    for mode in ("view", "stream"):
        out = tmp_path / f"{loss}-{mode}"
        r = invoke("train", "--cache", str(path), "--student", "digits_mlp", "--loss", loss,
                    "--epochs", "1", "--soft-labels", mode, "--out", str(out))  # fmt: skip
        assert r.exit_code == 0, r.output
        assert (out / "summary.json").is_file()


def test_bad_input_exits_2_in_one_line(dense: Path, make_store: MakeStore, tmp_path: Path) -> None:
    out = str(tmp_path / "x.zarr")
    base = ["dump", "--dataset", "digits", "--teacher", "digits_mlp", "--teacher-init",
            "random", "--views", "1", "--out", out]  # fmt: skip
    one_error_line(invoke(*base, "--sample", "0"), "--sample 0 must be >= 1")
    one_error_line(invoke(*base, "--sample", "256"), "too large for the count dtype uint8")
    one_error_line(
        invoke(*base, "--sample", "4", "--proposal-temperature", "0"),
        "--proposal-temperature 0.0 must be finite and > 0",
    )
    one_error_line(
        invoke(*base, "--sample", "4", "--proposal-temperature", "-2"), "must be finite and > 0"
    )
    one_error_line(invoke("copy", str(dense), out, "--sample", "0"), "--sample 0 must be >= 1")
    one_error_line(invoke(*base, "--proposal-temperature", "2"), "without --sample")
    sampled = make_store("s.zarr", sample=S, **FAST)
    ["train", "--cache", str(sampled), "--student", "digits_mlp"]
    one_error_line(
        invoke(
            "train",
            "--cache",
            str(sampled),
            "--student",
            "digits_mlp",
            "--loss",
            "ctkd",
            "--out",
            str(tmp_path / "r"),
        ),
        "--loss ctkd cannot train from a sampled store",
    )
    one_error_line(invoke("copy", str(sampled), out, "--sample", "3"), "already sampled")
    one_error_line(invoke("copy", str(sampled), out, "--topk", "3"), "already sampled")


@pytest.mark.parametrize(
    ("kind", "loss", "rows"),
    [("raw", "kd", (S, None)), ("sort", "dkd", (S, None)), ("sort", "lskd", (S, None)),
     ("sort", "kd", (4, 3))],  # (draws, --sample-head): the last a hybrid row
)  # fmt: skip
def test_train_sample_on_a_dense_store_trains_like_its_copy_sample(
    small_store: Path, tmp_path: Path, kind: str, loss: str, rows: tuple[int, int | None]
) -> None:
    """``train --sample S [--sample-head H]`` on a dense store: step for step and weight for
    weight the run from ``copy --sample S [--sample-head H]`` (the same draws, made batch by
    batch); the run records the proposal temperature and the head it drew with."""
    from sortkd_cache.checkpoint import load_state_dict
    from sortkd_cache.pipelines.train import TrainConfig, train

    copied, (draws, head) = tmp_path / "s.zarr", rows
    derive = DeriveConfig(sample=draws, sample_head=head)
    derive_store(str(small_store), str(copied), derive, progress=False)
    common: dict[str, Any] = {"student": "digits_mlp", "logits": kind, "loss": loss,
                              "epochs": 2, "milestones": (), "batch_size": 32,
                              "progress": False, "device": "cpu"}  # fmt: skip
    out = tmp_path / "a"
    dense = train(TrainConfig(cache=str(small_store), sample=draws, sample_head=head,
                              out=str(out), **common))  # fmt: skip
    resolved = json.loads((out / "config.json").read_text())["resolved"]
    assert resolved["sample_proposal_temperature"] == 4.0
    assert resolved["sample_head"] == (head or 0)
    copy = train(TrainConfig(cache=str(copied), out=str(tmp_path / "b"), **common))
    assert len(dense.step_losses) == 6 and dense.step_losses == copy.step_losses
    wa, wb = (load_state_dict(tmp_path / n / "model.safetensors") for n in ("a", "b"))
    assert all(torch.equal(wa[name], wb[name]) for name in wa)
    if head:
        return
    full = train(TrainConfig(cache=str(small_store), out=str(tmp_path / "c"), **common))
    assert full.step_losses[0] != dense.step_losses[0]  # the sampling acts
    train_args = ["train", "--cache", str(small_store), "--student", "digits_mlp"]
    out = ["--out", str(tmp_path / "x")]
    one_error_line(invoke(*train_args, "--sample", "0", *out), "--sample 0 must be >= 1")
    one_error_line(invoke(*train_args, "--sample", "3", "--topk", "3", *out), "exclude")
    one_error_line(invoke(*train_args, "--sample", "3", "--loss", "ctkd", *out), "ctkd")
    one_error_line(
        invoke("train", "--cache", str(copied), "--student", "digits_mlp", "--sample", "3", *out),
        "samples a dense store's rows",
    )
