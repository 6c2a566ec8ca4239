"""The quantized kind in a store: dump --quantize, copy --quantize, sort, verify, info, train
(every loss; `train --quantize` on a dense store equals training from the copy), sweep members
equal to their solo runs, and the bad inputs (each exit 2 with one line)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sortkd_cache as sk
from sortkd_cache.checkpoint import load_state_dict
from sortkd_cache.pipelines.copy import DeriveConfig, derive_store
from sortkd_cache.pipelines.copy import _derive as derive
from sortkd_cache.pipelines.sweep import sweep
from sortkd_cache.pipelines.sweep._grid import MemberSpec, SweepConfig, grid
from sortkd_cache.pipelines.train import TrainConfig, train
from sortkd_cache.sparse import QuantRows, QuantSpec, apply_quant, quantize_rows
from sortkd_cache.store import verify_store
from sortkd_cache.testing import invoke, one_error_line

from .test_sample import FAST, MakeStore
from .test_sample import rows_of as sample_rows_of
from .test_sample import same_bits as same

torch.set_num_threads(1)
B = 3
SMALL: dict[str, Any] = {
    "student": "digits_mlp", "epochs": 2, "milestones": (), "batch_size": 32,
    "progress": False, "device": "cpu",
}  # fmt: skip


def rows_of(store: sk.CacheStore, kind: str, view: int) -> QuantRows:
    rows: QuantRows = sample_rows_of(store, kind, view, QuantRows)
    return rows


@pytest.fixture
def dense(make_store: MakeStore) -> Path:
    path = make_store("d.zarr", **FAST)
    assert invoke("sort", str(path)).exit_code == 0
    return path


@pytest.fixture(scope="module")
def quant_small(small_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``copy --quantize 3`` of the small dense store (fake:96:10:8, raw + sort, float16)."""
    out = tmp_path_factory.mktemp("quant") / "q.zarr"
    derive_store(str(small_store), str(out), DeriveConfig(quantize=B), progress=False)
    return out


def test_dump_quantize_equals_quantizing_the_dense_rows_then_sort_as_copy(
    dense: Path, make_store: MakeStore, tmp_path: Path
) -> None:
    """dump --quantize writes the quantized dense rows (chunking aside); sort on it equals the
    sort kind `copy --quantize` makes, and both verify sound; info states bytes and fidelity."""
    made = make_store("q.zarr", quantize=B, **FAST)
    other = make_store("q32.zarr", quantize=B, chunk_samples=32, **FAST)
    d, q, q32 = sk.open_store(dense), sk.open_store(made), sk.open_store(other)
    spec = q.layout.spec
    assert isinstance(spec, QuantSpec) and spec.bits == B and spec.dtype == d.meta.dtype
    y = np.asarray(d.labels)
    for v in range(d.num_views):
        want = quantize_rows(np.asarray(d.logits("raw")[:, v]), spec)
        assert same(rows_of(q, "raw", v), want) and same(rows_of(q32, "raw", v), want)
    assert invoke("sort", str(made)).exit_code == 0
    copied = tmp_path / "c.zarr"
    derive_store(str(dense), str(copied), DeriveConfig(quantize=B), progress=False)
    c = sk.open_store(copied)
    for v in range(d.num_views):
        sorted_rows = apply_quant("sort", rows_of(c, "raw", v), y, spec)[0]
        assert same(rows_of(sk.open_store(made), "sort", v), sorted_rows)
        assert same(rows_of(c, "sort", v), sorted_rows)
    assert verify_store(made).sound and verify_store(copied).sound
    check = invoke("verify", str(made), "--recompute", "12")  # within half a step: sound
    assert check.exit_code == 0 and "12 sample-views" in check.output and ": OK" in check.output
    assert "beyond the store's own rounding, up to" in check.output
    info = json.loads(invoke("info", str(copied), "--json").output)["sparse"]
    assert info["bits"] == B and info["bytes_per_sample_view"] == -(-10 * B // 8) + 2 * 2
    text = invoke("info", str(copied)).output
    assert "every one of 10 classes in 3 bits" in text and "quantized fidelity" in text
    fid = c.kind_attrs("raw")["fidelity"]
    assert fid["layout"] == "quant" and fid["rows"] == len(y) * d.num_views
    assert 0 < fid["mean_kl"]["4"] < fid["mean_kl"]["1"] and fid["max_logit_error"] > 0


@pytest.mark.parametrize("workers", [1, 2])
def test_copy_quantize_is_the_same_store_for_1_and_2_workers(
    dense: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(derive, "_workers", lambda: workers)
    out = tmp_path / f"c{workers}.zarr"
    derive_store(str(dense), str(out), DeriveConfig(quantize=B), progress=False)
    monkeypatch.setattr(derive, "_workers", lambda: 1)
    ref = tmp_path / "ref.zarr"
    derive_store(str(dense), str(ref), DeriveConfig(quantize=B), progress=False)
    a, b = sk.open_store(out), sk.open_store(ref)
    for kind in ("raw", "sort"):
        for v in range(a.num_views):
            assert same(rows_of(a, kind, v), rows_of(b, kind, v))
    assert a.kind_attrs("raw")["fidelity"] == b.kind_attrs("raw")["fidelity"]


def test_verify_finds_padding_bits_in_a_chunk(dense: Path, tmp_path: Path) -> None:
    import zarr

    out = tmp_path / "q.zarr"
    derive_store(str(dense), str(out), DeriveConfig(quantize=B), progress=False)
    assert verify_store(out).sound
    arr = zarr.open_array(str(out / "logits" / "raw" / "codes"), mode="r+")
    row = np.asarray(arr[5, 1])
    row[-1] |= 0x80  # 10 classes x 3 bits: the last byte's top 2 bits are padding
    arr[5, 1] = row
    report = verify_store(out)
    assert not report.sound
    assert any("padding bits" in p.message for p in report.problems), report.problems


@pytest.mark.parametrize(("kind", "loss"), [("raw", "kd"), ("sort", "dkd"), ("sort", "ctkd")])
def test_train_quantize_on_a_dense_store_trains_like_its_copy(
    small_store: Path, quant_small: Path, tmp_path: Path, kind: str, loss: str
) -> None:
    """Step for step and weight for weight, every loss (CTKD too: the rows read back are
    dense); whole views and streamed chunks alike."""
    common = {**SMALL, "logits": kind, "loss": loss}
    a = train(TrainConfig(cache=str(small_store), quantize=B, out=str(tmp_path / "a"), **common))
    b = train(TrainConfig(cache=str(quant_small), out=str(tmp_path / "b"), **common))
    stream = {"soft_labels": "stream", "stream_window": 1, **common}
    sa = train(TrainConfig(cache=str(small_store), quantize=B, out=str(tmp_path / "sa"), **stream))
    sb = train(TrainConfig(cache=str(quant_small), out=str(tmp_path / "sb"), **stream))
    full = train(TrainConfig(cache=str(small_store), out=str(tmp_path / "c"), **common))
    assert len(a.step_losses) == 6 and a.step_losses == b.step_losses
    assert sa.step_losses == sb.step_losses
    assert full.step_losses[0] != a.step_losses[0]  # the quantization acts
    wa, wb = (load_state_dict(tmp_path / n / "model.safetensors") for n in ("a", "b"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    resolved = json.loads((tmp_path / "a" / "config.json").read_text())["resolved"]
    assert resolved["quantize"] == B and resolved["sparse_tail"] is None


@pytest.mark.parametrize("stack", ["off", "on"])
def test_sweep_members_of_quantized_rows_equal_their_solo_runs(
    small_store: Path, quant_small: Path, tmp_path: Path, stack: str
) -> None:
    """A sweep of the dense store with `--quantize` members beside a plain one, and a sweep of
    the quantized store: each member its solo run; the two KD members quantized alike equal."""
    common = {"epochs": 2, "milestones": (1,), "batch_size": 32, "device": "cpu", "data_seed": 5}
    results = {}
    for name, cache, variants in (
        ("dense", small_store, (B, None)),
        ("store", quant_small, (None,)),
    ):
        out, members = tmp_path / name, []
        for bits in variants:
            for m in grid({**common, "cache": str(cache), "quantize": bits}, out=str(out),
                          students=["digits_mlp"], losses=["kd", "lskd"], logits=["sort"],
                          seeds=[0]):  # fmt: skip
                member = f"{m.name}-{bits}"
                members.append(
                    MemberSpec(member, dataclasses.replace(m.cfg, out=str(out / member)))
                )
        config = SweepConfig(out=str(out), members=tuple(members), stack=stack, progress=False)
        result = sweep(config)
        for m in members:
            data = {**m.cfg.to_dict(), "out": str(tmp_path / "solo" / name / m.name)}
            solo = train(TrainConfig.from_dict({**data, "progress": False}))
            got = result.results[m.name].step_losses
            if stack == "off":
                assert got == solo.step_losses, m.name
            else:
                assert got == pytest.approx(solo.step_losses, abs=1e-4), m.name
            results[f"{name}/{m.name}"] = got
    kd = "digits_mlp-kd-sort-s0"
    assert results[f"dense/{kd}-{B}"] == pytest.approx(results[f"store/{kd}-None"], abs=1e-6)
    assert results[f"dense/{kd}-{B}"] != results[f"dense/{kd}-None"]


def test_bad_input_exits_2_in_one_line(dense: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "x.zarr")
    copy = ["copy", str(dense), out]
    one_error_line(invoke(*copy, "--quantize", "1"), "--quantize 1 must be between 2 and 8 bits")
    one_error_line(invoke(*copy, "--quantize", "9"), "--quantize 9 must be between 2 and 8 bits")
    one_error_line(invoke(*copy, "--quantize", "3", "--topk", "2"), "exclude each other")
    one_error_line(invoke(*copy, "--quantize", "3", "--sample", "2"), "exclude each other")
    q = tmp_path / "q.zarr"
    derive_store(str(dense), str(q), DeriveConfig(quantize=B), progress=False)
    for flag in ("--quantize", "--topk", "--sample"):
        one_error_line(invoke("copy", str(q), out, flag, "2"), "already quantized")
    dump = ["dump", "--dataset", "digits", "--teacher", "digits_mlp", "--teacher-init",
            "random", "--views", "1", "--out", out]  # fmt: skip
    one_error_line(invoke(*dump, "--quantize", "0"), "--quantize 0 must be between 2 and 8")
    one_error_line(invoke(*dump, "--quantize", "3", "--topk", "2"), "exclude each other")
    train_ = ["train", "--student", "digits_mlp", "--out", out, "--epochs", "1"]
    one_error_line(invoke(*train_, "--cache", str(q), "--quantize", "3"), "already quantized")
    one_error_line(invoke(*train_, "--cache", str(q), "--topk", "2"), "is quantized")
    one_error_line(invoke(*train_, "--cache", str(q), "--sparse-tail", "uniform"),
                   "name every class")  # fmt: skip
    one_error_line(invoke(*train_, "--cache", str(dense), "--quantize", "3", "--loss", "ce"),
                   "no teacher term")  # fmt: skip
    one_error_line(invoke(*train_, "--cache", str(dense), "--quantize", "3", "--topk", "2"),
                   "exclude each other")  # fmt: skip
    assert not Path(out).exists()
