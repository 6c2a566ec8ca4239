"""Shared fixtures: small stores built through the real pipelines (no network, CPU only)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# before torch is imported (sortkd_cache.testing imports the pipelines)
os.environ.setdefault("SORTKD_NO_PROGRESS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")

from sortkd_cache.testing import dump_and_sort, small_dump

REPO = Path(__file__).resolve().parents[1]


#: The options every small student run of the train tests shares (a TrainConfig's kwargs).
TRAIN_BASE: dict[str, Any] = {
    "student": "digits_cnn_s",
    "epochs": 2,
    "milestones": (1,),
    "batch_size": 64,
    "progress": False,
    "device": "cpu",
}


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op torch thread while the test runs: tiny models are as fast on one, and
    robust to busy shared cores (a module: ``pytestmark = pytest.mark.usefixtures(...)``)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


#: a tiny student run (digits_mlp, batch 32: 3 steps an epoch), as TrainConfig kwargs
SMALL: dict[str, Any] = {
    "student": "digits_mlp",
    "epochs": 3,
    "milestones": (2,),
    "batch_size": 32,
    "progress": False,
    "device": "cpu",
}


def train_run(out: Path, cache: Path, loss: str, seed: int, logits: str = "raw") -> Path:
    """One finished ``train`` run directory."""
    import torch

    from sortkd_cache.pipelines.train import TrainConfig, train

    torch.set_num_threads(1)
    options = {} if loss == "ce" else {"logits": logits}
    train(TrainConfig(cache=str(cache), out=str(out), loss=loss, seed=seed, **SMALL, **options))
    return out


@pytest.fixture
def make_store(tmp_path: Path) -> Callable[..., Path]:
    """Dump a small store with the real dump pipeline; keyword arguments go to DumpConfig."""

    def _make(name: str = "s.zarr", **kw: Any) -> Path:
        return small_dump(tmp_path / name, **kw)

    return _make


@pytest.fixture(scope="session")
def digits_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digits teacher trained briefly with CE (weights as safetensors)."""
    from sortkd_cache.pipelines.train import TrainConfig, train

    out = tmp_path_factory.mktemp("teacher")
    train(
        TrainConfig(
            dataset="digits",
            student="digits_cnn_l",
            loss="ce",
            epochs=2,
            milestones=(),
            out=str(out / "run"),
            progress=False,
            device="cpu",
        )
    )
    return out / "run" / "model.safetensors"


@pytest.fixture(scope="session")
def digits_store(tmp_path_factory: pytest.TempPathFactory, digits_teacher: Path) -> Path:
    """A float32 digits store with 4 views, raw + sort + swap logits."""
    from sortkd_cache.pipelines.dump import DumpConfig, dump
    from sortkd_cache.pipelines.sort import SortConfig, sort_store

    out = tmp_path_factory.mktemp("stores") / "digits.zarr"
    dump(
        DumpConfig(
            dataset="digits",
            teacher="digits_cnn_l",
            teacher_ckpt=str(digits_teacher),
            views=4,
            dtype="float32",
            chunk_samples=512,
            out=str(out),
            progress=False,
            device="cpu",
        )
    )
    for method in ("sort", "swap"):
        sort_store(SortConfig(store=str(out), method=method, progress=False))
    return out


@pytest.fixture
def teacher_inputs(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Filled, while the test runs, with a copy of every batch ``dump`` feeds its teacher."""
    from sortkd_cache.pipelines.dump import _stage as dump_mod

    seen: list[Any] = []
    original = dump_mod.teacher_logits

    def spy(model: Any, x: Any, batch_size: int) -> Any:
        seen.append(x.clone())
        return original(model, x, batch_size)

    monkeypatch.setattr(dump_mod, "teacher_logits", spy)
    return seen


@pytest.fixture(scope="session")
def jpeg_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``imagefolder`` data: 3 classes x 14 JPEGs of varied sizes (20..35 x 20..39) in
    ``train/``, 3 x 4 in ``val/``."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("jpegs") / "tiny"
    rng = np.random.default_rng(7)
    for split, per_class in (("train", 14), ("val", 4)):
        for c in range(3):
            for k in range(per_class):
                h, w = int(rng.integers(20, 36)), int(rng.integers(20, 40))
                base = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
                path = root / split / f"class{c:02d}" / f"img{k:03d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(base).resize((w, h), Image.BILINEAR).save(path, quality=85)
    return root


@pytest.fixture(scope="session")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fake:96:10:8, 2 views of 2 chunks, raw + sort logits of a random resnet8: seconds to
    make; for tests that train many tiny runs (digits_mlp, batch 32: 3 steps an epoch)."""
    return dump_and_sort(tmp_path_factory.mktemp("small") / "s.zarr", "fake:96:10:8", 48)
