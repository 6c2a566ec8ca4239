"""The dump stage in-process: exact replay, provenance, dtypes, chunking, NaN, overwrite."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sortkd_cache as sk
from sortkd_cache.augment import get_recipe, normalize, replay, sample_params
from sortkd_cache.checkpoint import file_sha256, load_weights, save_weights
from sortkd_cache.datasets import load_dataset
from sortkd_cache.errors import (
    ConfigError,
    NonFiniteLogitsError,
    OutputError,
    StoreError,
    StoreExistsError,
)
from sortkd_cache.models import create_model
from sortkd_cache.pipelines.dump import DumpConfig, DumpResult, dump
from sortkd_cache.pipelines.dump import _stage as dump_mod

SPEC = "fake:200:10:8"
N, C = 200, 10


def run(out: Path, **kw: Any) -> DumpResult:
    cfg: dict[str, Any] = {
        "dataset": SPEC,
        "teacher": "digits_mlp",  # tiny and fast; the replay test uses a CIFAR ResNet
        "teacher_init": "random",
        "views": 3,
        "chunk_samples": 64,
        "progress": False,
        "device": "cpu",
    }
    cfg.update(kw)
    return dump(DumpConfig(out=str(out), **cfg))


def arrays(path: Path) -> dict[str, bytes]:
    store = sk.open_store(path)
    names = ("labels", "aug_params", "logits/raw", "progress/raw")
    return {n: np.asarray(store.raw_array(n)[...]).tobytes() for n in names}


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(123)
    path = tmp_path_factory.mktemp("teacher") / "resnet8.safetensors"
    save_weights(create_model("resnet8", num_classes=C, in_chans=3), path)
    return path


def test_replayed_params_reproduce_pixels_and_logits(
    tmp_path, teacher_ckpt, monkeypatch, teacher_inputs
) -> None:
    seen = teacher_inputs
    out = tmp_path / "f32.zarr"
    result = run(
        out,
        teacher="resnet8",
        teacher_init="checkpoint",
        teacher_ckpt=str(teacher_ckpt),
        dtype="float32",
    )
    monkeypatch.undo()
    store = sk.open_store(out)
    meta = store.meta
    assert meta.teacher.sha256 == file_sha256(teacher_ckpt)
    assert meta.teacher.init == "checkpoint" and meta.teacher.checkpoint == teacher_ckpt.name
    assert result.units_written == store.num_blocks * 3 == len(seen)

    ds = load_dataset(SPEC, "train")
    recipe = get_recipe(meta.augment["name"])
    assert recipe.to_dict() == meta.augment
    model = create_model("resnet8", num_classes=C, in_chans=3)
    load_weights(model, teacher_ckpt, "resnet8")
    model.eval()
    raw = store.logits("raw")
    assert raw.dtype == np.float32
    unit = 0
    for block in range(store.num_blocks):
        start, stop = store.block_bounds(block)
        images = ds.images(np.arange(start, stop))
        for view in range(3):
            params = store.params(view, start, stop)
            idx = np.arange(start, stop)
            expect = sample_params(recipe, meta.seed, idx, view, ds.image_sizes()[start:stop])
            np.testing.assert_array_equal(params, expect)
            x = normalize(replay(images, params, recipe), ds.info.mean, ds.info.std)
            assert torch.equal(x, seen[unit]), f"pixels differ in block {block}, view {view}"
            unit += 1
    for view in range(3):  # the whole view at once: other batch boundaries, same logits
        views = replay(ds.images(np.arange(N)), store.params(view), recipe)
        x = normalize(views, ds.info.mean, ds.info.std)
        with torch.inference_mode():
            z = model(x).numpy()
        np.testing.assert_allclose(raw[:, view], z, rtol=1e-4, atol=1e-5)


def test_provenance_and_per_view_accuracy(tmp_path) -> None:
    out = tmp_path / "p.zarr"
    result = run(out, dtype="float32", seed=7)
    store = sk.open_store(out)
    meta = store.meta
    assert meta.complete and store.kinds() == ["raw"]
    assert (meta.num_samples, meta.num_views, meta.num_classes) == (N, 3, C)
    assert meta.seed == 7 and meta.teacher.init == "random" and meta.teacher.sha256 is None
    ds = load_dataset(SPEC, "train")
    assert meta.dataset.fingerprint == ds.fingerprint()
    assert meta.dataset.spec == SPEC
    np.testing.assert_array_equal(store.labels, ds.labels)
    z = store.logits("raw")[...]
    acc = [float((z[:, v].argmax(1) == store.labels).mean()) for v in range(3)]
    assert list(meta.teacher_accuracy) == pytest.approx(acc)
    assert result.teacher_accuracy == pytest.approx(acc)
    assert meta.dump_seconds is not None and meta.dump_seconds > 0


def test_float16_by_default_and_float32_on_request(tmp_path) -> None:
    run(tmp_path / "h.zarr", views=1)
    run(tmp_path / "f.zarr", views=1, dtype="float32")
    h = sk.open_store(tmp_path / "h.zarr").logits("raw")
    f = sk.open_store(tmp_path / "f.zarr").logits("raw")
    assert h.dtype == np.float16 and f.dtype == np.float32
    assert sk.open_store(tmp_path / "h.zarr").meta.dtype == "float16"
    np.testing.assert_array_equal(h[...], f[...].astype(np.float16))  # same teacher, same views


@pytest.mark.parametrize(("chunk", "expect"), [(50, 50), (None, N), (1000, N)])
def test_chunks_never_split_a_row_and_hold_one_view(tmp_path, chunk, expect) -> None:
    out = tmp_path / "c.zarr"
    run(out, views=2, chunk_samples=chunk)
    store = sk.open_store(out)
    assert store.chunk_samples == expect
    assert store.raw_array("logits/raw").chunks == (expect, 1, C)
    assert store.raw_array("aug_params").chunks == (expect, 1, 5)
    assert store.logits("raw").chunks == (expect, 1, C)
    for name in ("labels", "aug_params", "logits/raw", "progress/raw"):
        codecs = json.loads((out / name / "zarr.json").read_text())["codecs"]
        assert "crc32c" in [c["name"] for c in codecs], name
    chunk_files = list((out / "logits" / "raw" / "c").rglob("*"))
    assert sum(p.is_file() for p in chunk_files) == store.num_blocks * 2


def test_params_do_not_depend_on_batch_size_and_logits_repeat_exactly(tmp_path) -> None:
    for name, bs, chunk in (("a", 16, 64), ("b", 16, 64), ("c", 64, 64), ("d", 64, 100)):
        run(tmp_path / f"{name}.zarr", views=2, batch_size=bs, dtype="float32", chunk_samples=chunk)
    a = arrays(tmp_path / "a.zarr")
    b, c = arrays(tmp_path / "b.zarr"), arrays(tmp_path / "c.zarr")
    assert a == b  # same batch size: every array bit for bit
    d = sk.open_store(tmp_path / "d.zarr")
    for other in (c, arrays(tmp_path / "d.zarr")):
        assert other["aug_params"] == a["aug_params"]
        assert other["labels"] == a["labels"]
    z16 = sk.open_store(tmp_path / "a.zarr").logits("raw")[...]
    for other_store in (sk.open_store(tmp_path / "c.zarr"), d):
        np.testing.assert_allclose(other_store.logits("raw")[...], z16, rtol=1e-4, atol=1e-5)


def test_existing_store_needs_overwrite(tmp_path) -> None:
    out = tmp_path / "o.zarr"
    run(out, views=1)
    before = arrays(out)
    with pytest.raises(StoreExistsError, match="--overwrite"):
        run(out, views=1, seed=1)
    assert arrays(out) == before
    run(out, views=2, seed=1, overwrite=True)
    store = sk.open_store(out)
    assert store.meta.seed == 1 and store.num_views == 2 and store.kinds() == ["raw"]


def test_overwrite_refuses_a_directory_that_is_not_a_store(tmp_path) -> None:
    out = tmp_path / "notes"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    (out / "download.partial").write_text("mine too")
    with pytest.raises(OutputError, match="not a sortkd-cache store"):
        run(out, views=1, overwrite=True)
    with pytest.raises(StoreError, match="not a sortkd-cache store"):
        run(out, views=1, resume=True)
    assert (out / "notes.txt").read_text() == "keep me"
    assert (out / "download.partial").read_text() == "mine too"


def test_fresh_dump_cleans_a_dead_writers_leftovers(tmp_path) -> None:
    out = tmp_path / "fresh.zarr"
    out.mkdir()
    (out / "zarr.4e1f.partial").write_text("{")  # killed while writing the root metadata
    lock = {"host": os.uname().nodename, "pid": 2**22 + 7, "since": "?", "purpose": "dump"}
    (out / ".sortkd-lock.json").write_text(json.dumps(lock))
    run(out, views=1)
    assert sk.open_store(out).kinds() == ["raw"]
    assert not list(out.rglob("*.partial")) and not (out / ".sortkd-lock.json").exists()


def test_nan_logits_stop_the_dump_and_keep_written_chunks(tmp_path, monkeypatch) -> None:
    original = dump_mod.teacher_logits
    calls = {"n": 0}
    bad_unit, bad_row = 4, 5  # unit 4 = block 1, view 1 (3 views per block)

    def poisoned(model: torch.nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        out = original(model, x, batch_size).clone()
        if calls["n"] == bad_unit:
            out[bad_row, 3] = float("nan")
        calls["n"] += 1
        return out

    monkeypatch.setattr(dump_mod, "teacher_logits", poisoned)
    out = tmp_path / "nan.zarr"
    with pytest.raises(NonFiniteLogitsError, match=f"sample {64 + bad_row}, view 1") as info:
        run(out)
    assert "nan" in str(info.value) and "\n" not in str(info.value)
    monkeypatch.undo()
    store = sk.open_store(out)
    assert not store.meta.complete and store.kinds() == []
    done = store.progress("raw") >= 0
    flat = done.reshape(-1)  # unit order: block-major, view-minor
    assert flat[:bad_unit].all() and not flat[bad_unit:].any()
    raw = store.raw_array("logits/raw")
    assert np.isfinite(raw[0:64, :]).all() and np.isfinite(raw[64:128, 0]).all()
    # The same dump, resumed with a healthy teacher, equals an uninterrupted one.
    result = run(out, resume=True)
    assert result.units_skipped == bad_unit
    run(tmp_path / "clean.zarr")
    assert arrays(out) == arrays(tmp_path / "clean.zarr")


def test_inf_after_float16_cast_is_caught(tmp_path, monkeypatch) -> None:
    original = dump_mod.teacher_logits

    def huge(model: torch.nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        out = original(model, x, batch_size).clone()
        out[2, 0] = 1e6  # finite in float32, inf in float16
        return out

    monkeypatch.setattr(dump_mod, "teacher_logits", huge)
    with pytest.raises(NonFiniteLogitsError, match="inf logits for sample 2, view 0"):
        run(tmp_path / "inf.zarr")
    run(tmp_path / "inf32.zarr", dtype="float32")  # representable: accepted


def test_resume_of_complete_store_is_a_no_op(tmp_path) -> None:
    out = tmp_path / "r.zarr"
    run(out)
    before, meta = arrays(out), sk.open_store(out).meta
    result = run(out, resume=True)
    assert result.units_written == 0 and result.units_skipped == 4 * 3
    assert arrays(out) == before and sk.open_store(out).meta == meta


def test_resume_checks_identity_and_batch_size(tmp_path) -> None:
    out = tmp_path / "r.zarr"
    run(out)
    store = sk.open_store(out, mode="r+")
    store.raw_array("progress/raw")[1, 1] = -1  # pretend one unit is missing
    store.set_kind_attrs("raw", {"kind": "raw", "complete": False, "batch_size": 256})
    store.write_meta(store.meta.replace(complete=False))
    with pytest.raises(StoreError, match="seed is 0 in the store but 1 now"):
        run(out, resume=True, seed=1)
    with pytest.raises(StoreError, match="dataset fingerprint differs"):
        run(out, resume=True, dataset="fake:200:10:16")  # same N and C, other images
    with pytest.raises(StoreError, match="augment differs"):
        run(out, resume=True, augment="none")
    with pytest.raises(ConfigError, match=r"--batch-size 32.*--batch-size 256"):
        run(out, resume=True, batch_size=32)
    with pytest.raises(ConfigError, match="exclude each other"):
        run(out, resume=True, overwrite=True)
    result = run(out, resume=True)
    assert (result.units_written, result.units_skipped) == (1, 11)
    assert sk.open_store(out).meta.complete


@pytest.mark.parametrize("drop", ["attrs", "arrays"])
def test_resume_after_a_kill_during_creation_starts_over(tmp_path, drop) -> None:
    import shutil

    out = tmp_path / "k.zarr"
    run(out)
    reference = arrays(out)
    if drop == "attrs":  # killed between the root group and its attributes
        for child in out.iterdir():
            if child.name != "zarr.json":
                shutil.rmtree(child)
        doc = json.loads((out / "zarr.json").read_text())
        doc["attributes"] = {}
        (out / "zarr.json").write_text(json.dumps(doc))
    else:  # killed before progress/raw was created
        shutil.rmtree(out / "progress")
    (out / "stray.0123.partial").write_bytes(b"half")
    run(out, resume=True)
    assert arrays(out) == reference
    assert not list(out.rglob("*.partial"))


def test_resume_refuses_a_foreign_directory(tmp_path) -> None:
    out = tmp_path / "foreign"
    out.mkdir()
    (out / "data.bin").write_bytes(b"x")
    with pytest.raises(StoreError, match="not a sortkd-cache store"):
        run(out, resume=True)


@pytest.mark.parametrize("out", ["s3://bucket/x.zarr", "x.zip", "https://example.org/x.zarr"])
def test_dump_writes_only_local_directories(tmp_path, out) -> None:
    with pytest.raises(StoreError, match="local directory store"):
        dump(DumpConfig(dataset=SPEC, teacher="resnet8", teacher_init="random", out=out))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"views": 0}, "--views must be an integer >= 1, got 0"),
        ({"batch_size": 0}, "--batch-size must be an integer >= 1, got 0"),
        ({"chunk_samples": -3}, "--chunk-samples must be an integer >= 1, got -3"),
        ({"dtype": "bfloat16"}, "unknown --dtype 'bfloat16'"),
    ],
)
def test_bad_config_is_refused_before_any_work(tmp_path, kw, match) -> None:
    out = tmp_path / "never.zarr"
    with pytest.raises(ConfigError, match=match):
        run(out, **kw)
    assert not out.exists()


def test_config_round_trip() -> None:
    cfg = DumpConfig(dataset=SPEC, teacher="resnet8", out="x.zarr", views=2, seed=3)
    assert DumpConfig.from_dict(cfg.to_dict()) == cfg
