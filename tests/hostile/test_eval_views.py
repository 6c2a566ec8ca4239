"""Issue 28 item 9: what the teacher sees matches the reference transforms where asked.

The probe: a timm teacher's logits of a photo, dumped as a new user would, differed from
timm's own eval transform of the same file by up to 0.94 of the largest logit, and no
un-augmented view existed. ``--augment eval`` makes the reference view (shorter side to
``floor(SIZE / crop_pct)``, centre crop, antialiased): here on real photos (scikit-learn's
sample images, 427 x 640) with a timm model whose config has crop_pct 0.9, mean/std 0.5 and
bicubic resizing (random weights, no download). And ``none`` no longer squashes a
non-square photo into the teacher's square input: it is refused, naming ``eval``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sortkd_cache.testing import invoke, one_error_line

timm = pytest.importorskip("timm")
sklearn_datasets = pytest.importorskip("sklearn.datasets")

#: from timm's registry: crop_pct 0.9, mean = std = (0.5, 0.5, 0.5), bicubic, 224 px
MODEL = "convnext_zepto_rms_ols.ra4_e3600_r224_in1k"


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """An image folder of scikit-learn's two sample photos (one class each), as PNG."""
    from PIL import Image

    root = tmp_path / "photos"
    for name, pixels in zip(
        ("china", "flower"), sklearn_datasets.load_sample_images().images, strict=True
    ):
        (root / name).mkdir(parents=True)
        Image.fromarray(pixels).save(root / name / f"{name}.png")
    return root


@pytest.fixture
def teacher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[torch.nn.Module, Path]:
    from sortkd_cache.checkpoint import save_weights

    torch.set_num_threads(1)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    model = timm.create_model(MODEL, pretrained=False, num_classes=2).eval()
    cfg = timm.data.resolve_data_config({}, model=model)
    assert (cfg["crop_pct"], cfg["mean"], cfg["std"]) == (0.9, (0.5,) * 3, (0.5,) * 3)
    path = tmp_path / "teacher.safetensors"
    save_weights(model, path)
    return model, path


def _dump(photos: Path, ckpt: Path, out: Path, augment: str) -> object:
    return invoke(
        "dump", "--dataset", f"imagefolder:{photos}", "--teacher", f"timm:{MODEL}",
        "--teacher-ckpt", str(ckpt), "--augment", augment, "--views", "1", "--seed", "0",
        "--dtype", "float32", "--device", "cpu", "--out", str(out), "--no-progress",
    )  # fmt: skip


def test_eval_views_equal_timms_eval_transform(
    photos: Path, teacher: tuple[torch.nn.Module, Path], tmp_path: Path
) -> None:
    from PIL import Image

    import sortkd_cache as sk

    model, ckpt = teacher
    out = tmp_path / "eval.zarr"
    result = _dump(photos, ckpt, out, "eval")
    assert result.exit_code == 0, result.stderr
    store = sk.open_store(out)
    augment = store.meta.augment
    assert augment["kind"] == "eval" and augment["name"] == "eval:224"
    assert (augment["crop_pct"], augment["interpolation"], augment["version"]) == (
        0.9, "bicubic", 2,
    )  # fmt: skip
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    files = sorted(photos.glob("*/*.png"))
    with torch.no_grad():
        x = torch.stack([transform(Image.open(f).convert("RGB")) for f in files])
        want = model(x).numpy()
    got = np.asarray(store.logits("raw")[:, 0]).astype(np.float64)
    scale = np.abs(want).max(axis=1, keepdims=True)
    rel = float((np.abs(got - want) / scale).max())
    assert rel <= 1e-4, rel
    assert invoke("verify", str(out), "--recompute", "2", "--no-progress").exit_code == 0


def test_none_refuses_to_squash_a_photo(
    photos: Path, teacher: tuple[torch.nn.Module, Path], tmp_path: Path
) -> None:
    out = tmp_path / "none.zarr"
    line = one_error_line(_dump(photos, teacher[1], out, "none"), "--augment none", "eval")
    assert "427x640" in line and "224x224" in line
    assert not out.exists()


def test_an_eval_record_is_checked_like_any_recipe(
    photos: Path, teacher: tuple[torch.nn.Module, Path], tmp_path: Path
) -> None:
    """The recorded crop fraction may be the teacher's (any valid one); a resealed record
    with another size than its name says is refused by verify."""
    from .conftest import edit_json

    out = tmp_path / "eval.zarr"
    assert _dump(photos, teacher[1], out, "eval:64").exit_code == 0
    assert invoke("verify", str(out), "--no-progress").exit_code == 0

    def resize(doc: dict) -> None:
        doc["attributes"]["sortkd_cache"]["augment"]["out_size"] = [32, 32]

    edit_json(out / "zarr.json", resize, reseal=True)
    result = invoke("verify", str(out), "--no-progress")
    assert result.exit_code == 1 and "out_size=[32, 32]" in result.stdout
    record = json.loads((out / "zarr.json").read_text())["attributes"]["sortkd_cache"]
    assert record["augment"]["name"] == "eval:64"
