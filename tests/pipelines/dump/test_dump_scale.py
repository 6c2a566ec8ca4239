"""Dump at scale: parallel image decoders, teacher precision (autocast), their bad inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import sortkd_cache as sk
from sortkd_cache.pipelines.common import helpers
from sortkd_cache.pipelines.dump import DumpConfig, dump
from sortkd_cache.pipelines.info import format_info, store_info
from sortkd_cache.testing import invoke, one_error_line


def _dump(out: Path, dataset: str, **kw: Any) -> Path:
    cfg: dict[str, Any] = {
        "dataset": dataset,
        "teacher": "resnet8",
        "teacher_init": "random",
        "views": 2,
        "augment": "imagenet:16",
        "chunk_samples": 8,  # several blocks: the next block decodes while one is forwarded
        "batch_size": 5,
        "progress": False,
        "device": "cpu",
        "dtype": "float32",
    }
    cfg.update(kw)
    dump(DumpConfig(out=str(out), **cfg))
    return out


def _arrays(path: Path) -> dict[str, bytes]:
    store = sk.open_store(path)
    names = ("labels", "aug_params", "logits/raw", "progress/raw")
    return {n: np.asarray(store.raw_array(n)[...]).tobytes() for n in names}


@pytest.mark.parametrize("ahead", [True, False])
def test_two_decoders_give_the_single_decoder_store_bit_for_bit(
    jpeg_folder, tmp_path, monkeypatch, ahead: bool
) -> None:
    from sortkd_cache.pipelines.dump import _decode

    if not ahead:  # micro-batches too big to prepare several ahead: one at a time
        monkeypatch.setattr(_decode, "AHEAD_BYTES", 0)
    threads = torch.get_num_threads()
    one = _dump(tmp_path / "w1.zarr", f"imagefolder:{jpeg_folder}", workers=1)
    monkeypatch.setattr(_decode, "PIECE", 2)  # several worker tasks per micro-batch
    two = _dump(tmp_path / "w2.zarr", f"imagefolder:{jpeg_folder}", workers=2)
    assert _arrays(one) == _arrays(two)
    store = sk.open_store(one)
    assert store.num_samples == 42 and store.num_blocks == 6
    assert store.kind_attrs("raw")["decoder"] == "pil"
    assert (store.progress("raw") >= 0).all()
    # the workers run single-threaded; the main thread keeps its threads for the teacher
    assert torch.get_num_threads() == threads


def test_parallel_decode_is_the_serial_decode(jpeg_folder: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    ds = sk.datasets.load_dataset(f"imagefolder:{jpeg_folder}")
    idx = np.array([5, 0, 41, 17, 17])
    serial = ds.images(idx)
    with ThreadPoolExecutor(3) as pool:
        pooled = ds.images(idx, pool)
    assert len(serial) == len(pooled) == 5
    for a, b in zip(serial, pooled, strict=True):
        assert a.dtype == torch.uint8 and torch.equal(a, b)


def test_bf16_teacher_is_recorded_and_close_to_fp32(tmp_path) -> None:
    spec = "fake:96:10:8"
    f32 = _dump(tmp_path / "f32.zarr", spec, augment=None)
    b16 = _dump(tmp_path / "b16.zarr", spec, augment=None, precision="bf16")
    s32, s16 = sk.open_store(f32), sk.open_store(b16)
    assert s32.meta.teacher.precision == "fp32" and s16.meta.teacher.precision == "bf16"
    z32 = np.asarray(s32.logits("raw")[...], dtype=np.float64)
    z16 = np.asarray(s16.logits("raw")[...], dtype=np.float64)
    assert not np.array_equal(z32, z16)  # autocast acted
    scale = np.abs(z32).max()
    assert np.abs(z32 - z16).max() <= 0.05 * scale  # bf16 keeps ~3 significant digits
    assert (z32.argmax(-1) == z16.argmax(-1)).mean() >= 0.8
    info = store_info(str(b16))
    assert info["teacher"]["precision"] == "bf16"
    assert "precision=bf16" in format_info(info)
    assert "precision=fp32" in format_info(store_info(str(f32)))


def test_fp16_on_the_cpu_dumps_as_train_trains(tmp_path) -> None:
    """fp16 is for CUDA, but on a CPU it runs (slowly) in dump as in train, and is recorded;
    its logits are those of fp32 to float16 autocast's rounding."""
    f32 = sk.open_store(_dump(tmp_path / "f32.zarr", "fake:32:10:8", augment=None))
    h16 = sk.open_store(
        _dump(tmp_path / "h16.zarr", "fake:32:10:8", augment=None, precision="fp16")
    )
    assert h16.meta.teacher.precision == "fp16"
    a, b = (np.asarray(s.logits("raw")[:, 0], dtype=np.float32) for s in (f32, h16))
    assert not np.array_equal(a, b) and np.abs(a - b).max() < 0.1


def test_resume_with_another_precision_is_refused(tmp_path) -> None:
    out = _dump(tmp_path / "s.zarr", "fake:32:10:8", augment=None)
    with pytest.raises(sk.errors.StoreError, match="precision"):
        _dump(out, "fake:32:10:8", augment=None, precision="bf16", resume=True)


def _one_line_error(args: list[str]) -> str:
    return one_error_line(invoke(*args))


BASE = "dump --dataset fake:32:10:8 --teacher resnet8 --teacher-init random --views 1"


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--workers", "0"], "--workers"),
        (["--workers", "-3"], "-3"),
        (["--precision", "fp8"], "fp8"),
    ],
)
def test_bad_dump_options_exit_2_one_line(tmp_path, extra: list[str], named: str) -> None:
    out = tmp_path / "s.zarr"
    line = _one_line_error([*BASE.split(), "--out", str(out), *extra])
    assert named in line
    assert not out.exists()


def test_bf16_on_a_cpu_without_bf16_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(helpers, "_cpu_bf16_works", lambda: False)
    out = tmp_path / "s.zarr"
    line = _one_line_error(
        [*BASE.split(), "--out", str(out), "--precision", "bf16", "--device", "cpu"]
    )
    assert "bf16" in line
    assert not out.exists()


def test_this_cpu_computes_bf16() -> None:
    assert helpers._cpu_bf16_works()  # torch emulates bf16 where the CPU lacks it


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--decoder", "turbo"], "turbo"),
        (["--decoder", "nvjpeg", "--device", "cpu"], "nvjpeg"),
    ],
)
def test_bad_decoders_exit_2_one_line(tmp_path, extra: list[str], named: str) -> None:
    out = tmp_path / "s.zarr"
    assert named in _one_line_error([*BASE.split(), "--out", str(out), *extra])
    assert not out.exists()


def test_batched_jpeg_decoding_path(jpeg_folder: Path, tmp_path, monkeypatch) -> None:
    """The nvjpeg code path, run with torchvision's CPU decoder: JPEGs go to one batched
    decode_jpeg call, other formats to PIL; shapes equal PIL's and pixels are close."""
    from sortkd_cache.datasets import imagefolder
    from sortkd_cache.pipelines.dump import _decode

    ds = sk.datasets.load_dataset(f"imagefolder:{jpeg_folder}")
    png = tmp_path / "x.png"
    Image.fromarray(np.full((5, 7, 3), 200, dtype=np.uint8)).save(png)
    calls: list[int] = []
    original, original_many = imagefolder._decode_jpeg, imagefolder.decode_jpegs

    def counting(data: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
        calls.append(len(data))
        return original(data, device)

    monkeypatch.setattr(imagefolder, "_decode_jpeg", counting)
    paths = [*ds.paths([0, 1, 2]), str(png)]
    out = imagefolder.decode_jpegs(
        [imagefolder.read_bytes(p) for p in paths], paths, torch.device("cpu")
    )
    assert calls == [3]
    for path, img in zip(paths, out, strict=True):
        ref = imagefolder.decode_image(path)
        assert img.dtype == torch.uint8 and img.shape == ref.shape
        assert (img.float() - ref.float()).abs().mean() < 2.0
    recipe = sk.augment.get_recipe("imagenet:9")
    plan = [_decode.BlockPlan(0, 0, 8, (1,), np.zeros((1, 8, 5), dtype=np.int32))]
    plan[0].params[..., 2:4] = 4  # 4 x 4 crops at the top left
    cpu = torch.device("cpu")
    with _decode.ViewInputs(ds, recipe, 2, cpu, "nvjpeg", batch_size=5) as source:
        monkeypatch.setattr(source, "_device", torch.device("cuda"))  # the device path, on CPU
        monkeypatch.setattr(imagefolder, "decode_jpegs", lambda d, p, dev: original_many(d, p, cpu))
        got = list(source.batches(plan))
    assert [(bp.block, a, [tuple(x.shape) for x in xs]) for bp, a, xs in got] == [
        (0, 0, [(5, 3, 9, 9)]),
        (0, 5, [(3, 3, 9, 9)]),
    ]
    assert calls[1:] == [5, 3]  # one batched decode per micro-batch


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (nvjpeg)")
def test_nvjpeg_dump_is_the_same_for_any_worker_count(jpeg_folder: Path, tmp_path) -> None:
    spec = f"imagefolder:{jpeg_folder}"
    one = _dump(tmp_path / "g1.zarr", spec, workers=1, decoder="nvjpeg", device="cuda")
    two = _dump(tmp_path / "g2.zarr", spec, workers=2, decoder="nvjpeg", device="cuda")
    assert _arrays(one) == _arrays(two)
    assert sk.open_store(one).kind_attrs("raw")["decoder"] == "nvjpeg"


@pytest.mark.slow
def test_imagefolder_training_with_loader_workers_equals_in_process(jpeg_folder, tmp_path) -> None:
    """The DataLoader path on decoded JPEGs: 2 worker processes give the in-process batches
    (and no worker reads an index freed by another batch's transfer)."""
    from sortkd_cache.pipelines.train import TrainConfig, train

    spec = f"imagefolder:{jpeg_folder}"
    store = _dump(tmp_path / "s.zarr", spec, chunk_samples=None)
    losses = []
    for workers in (0, 2):
        cfg = TrainConfig(
            student="resnet8",
            cache=str(store),
            dataset=spec,
            loss="kd",
            epochs=2,
            batch_size=4,
            milestones=(),
            workers=workers,
            device="cpu",
            progress=False,
            out=str(tmp_path / f"run{workers}"),
        )
        losses.append(train(cfg).step_losses)
    assert len(losses[0]) == 2 * 11 and losses[0] == losses[1]


def test_folder_dump_feeds_the_teacher_the_views_train_replays(
    jpeg_folder: Path, tmp_path, monkeypatch, teacher_inputs
) -> None:
    """The workers' decoded, replayed and normalised pieces, put together, are exactly what
    ``train`` replays from the recorded parameters, micro-batch by micro-batch."""
    from sortkd_cache.augment import get_recipe
    from sortkd_cache.data import render
    from sortkd_cache.pipelines.dump import _decode

    seen = teacher_inputs
    monkeypatch.setattr(_decode, "PIECE", 3)  # micro-batches of 5 come in 2 pieces
    out = _dump(tmp_path / "s.zarr", f"imagefolder:{jpeg_folder}", workers=2)
    store = sk.open_store(out)
    ds = sk.datasets.load_dataset(f"imagefolder:{jpeg_folder}")
    recipe = get_recipe(store.meta.augment["name"])
    k = 0
    for block in range(store.num_blocks):
        start, stop = store.block_bounds(block)
        for a in range(start, stop, 5):  # --batch-size 5: the micro-batches
            b = min(stop, a + 5)
            images = ds.images(np.arange(a, b))
            for view in range(2):
                want = render(images, store.params(view, a, b), recipe, ds.info.mean, ds.info.std)
                assert torch.equal(seen[k], want), f"block {block}, samples {a}:{b}, view {view}"
                k += 1
    assert k == len(seen) == 2 * (5 * 2 + 1)  # 5 blocks of 8 (2 batches) and one of 2


def test_inputs_started_during_setup_are_the_inputs_of_the_plan(jpeg_folder: Path) -> None:
    """``start(plan)`` then ``batches(plan)`` goes on from the early work; a started plan
    that is not the one asked for is dropped. Either way: the inputs of a fresh pass."""
    from sortkd_cache.augment import get_recipe
    from sortkd_cache.pipelines.dump._decode import ViewInputs, plan_blocks

    ds = sk.datasets.load_dataset(f"imagefolder:{jpeg_folder}")
    recipe = get_recipe("imagenet:9")
    plan = plan_blocks(ds, recipe, 0, [(0, 0), (0, 1), (1, 1)], 8)
    other = plan_blocks(ds, recipe, 0, [(1, 0), (2, 0)], 8)

    def inputs(started: list[Any] | None) -> list[tuple[int, int, int, torch.Tensor]]:
        with ViewInputs(ds, recipe, 2, torch.device("cpu"), batch_size=5) as source:
            if started is not None:
                source.start(started)
            return [
                (bp.block, a, j, x.clone())
                for bp, a, xs in source.batches(plan)
                for j, x in enumerate(xs)
            ]

    fresh = inputs(None)
    assert [k[:3] for k in fresh] == [
        (0, 0, 0), (0, 0, 1), (0, 5, 0), (0, 5, 1), (1, 0, 0), (1, 5, 0)
    ]  # fmt: skip
    for started in (plan, other):
        again = inputs(started)
        assert [k[:3] for k in again] == [k[:3] for k in fresh]
        assert all(torch.equal(a[3], b[3]) for a, b in zip(again, fresh, strict=True))
