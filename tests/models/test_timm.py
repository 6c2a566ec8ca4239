"""timm teachers by name, with their own preprocessing (issue 24): tiny timm test models on
small fake data, CPU fp32, one torch thread; downloads are off (HF_HUB_OFFLINE=1, empty
caches under tmp_path), so nothing here touches the network."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import Result

from sortkd_cache.checkpoint import file_sha256, save_weights
from sortkd_cache.store import open_store
from sortkd_cache.testing import invoke, one_error_line

timm = pytest.importorskip("timm")

TINY = "test_resnet.r160_in1k"  # inception-style mean/std 0.5, 160 px, bilinear


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No downloads: offline mode forced, the caches empty folders of this test."""
    torch.set_num_threads(1)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "hf"


def random_timm(name: str, num_classes: int, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return timm.create_model(name, pretrained=False, num_classes=num_classes).eval()


def dump(out: Path, spec: str, *extra: str, augment: str = "none") -> Result:
    args = ["--dataset", spec, "--views", "2", "--dtype", "float32", "--augment", augment]
    return invoke("dump", *args, "--device", "cpu", "--out", str(out), *extra)


def timm_forward(model: torch.nn.Module, views: torch.Tensor) -> torch.Tensor:
    """timm's own eval input: ToTensor and Normalize with timm's data config, then forward."""
    from torchvision.transforms import Normalize

    cfg = timm.data.resolve_data_config({}, model=model)
    x = Normalize(cfg["mean"], cfg["std"])(views.float().div(255))
    with torch.inference_mode():
        return model(x)


def stored_views(store_path: Path, view: int) -> torch.Tensor:
    """The replayed (uint8) views ``view`` of every sample of a fake store."""
    from sortkd_cache.augment import AugmentRecipe, replay
    from sortkd_cache.datasets import load_dataset

    store = open_store(str(store_path))
    ds = load_dataset(store.meta.dataset.spec, "train")
    images = ds.images(np.arange(store.num_samples))
    params = store.params(view)
    return replay(images, params, AugmentRecipe.from_dict(store.meta.augment))


def test_dump_equals_timm_forward_on_the_same_crop(tmp_path: Path) -> None:
    """Random weights saved as safetensors, reloaded by name + checkpoint: the dumped logits
    are timm's forward of the same crop normalised by timm's data config, exactly."""
    model = random_timm(TINY, 10)
    ckpt = tmp_path / "t.safetensors"
    save_weights(model, ckpt)
    out = tmp_path / "s.zarr"
    result = dump(
        out,
        "fake:6:10:96",
        "--teacher",
        f"timm:{TINY}",
        "--teacher-ckpt",
        str(ckpt),
        augment="imagenet:160",
    )
    assert result.exit_code == 0, result.stderr
    store = open_store(str(out))
    for view in range(2):
        want = timm_forward(model, stored_views(out, view))
        got = torch.from_numpy(np.asarray(store.logits("raw")[:, view]))
        assert torch.equal(got, want), (got - want).abs().max()
    assert store.meta.teacher.sha256 == file_sha256(ckpt)


def test_resized_views_match_timm_within_the_resize_tolerance(tmp_path: Path) -> None:
    """32 px views resized to the teacher's 160 px (bilinear, antialiased, on uint8): timm's
    PIL eval transform of the same view gives logits within 2e-2 (PIL and torch round
    resized pixels differently by at most one level)."""
    from PIL import Image

    model = random_timm(TINY, 10)
    ckpt = tmp_path / "t.safetensors"
    save_weights(model, ckpt)
    out = tmp_path / "s.zarr"
    assert (
        dump(
            out, "fake:4:10:32", "--teacher", f"timm:{TINY}", "--teacher-ckpt", str(ckpt)
        ).exit_code
        == 0
    )
    cfg = timm.data.resolve_data_config({}, model=model)
    transform = timm.data.create_transform(**{**cfg, "crop_pct": 1.0})
    views = stored_views(out, 0)
    x = torch.stack([transform(Image.fromarray(v.permute(1, 2, 0).numpy())) for v in views])
    with torch.inference_mode():
        want = model(x)
    got = torch.from_numpy(np.asarray(open_store(str(out)).logits("raw")[:, 0]))
    assert tuple(x.shape[-2:]) == (160, 160)
    torch.testing.assert_close(got, want, atol=2e-2, rtol=0)


def test_inception_style_teacher_gets_its_normalisation_and_the_store_records_it(
    tmp_path: Path,
) -> None:
    out = tmp_path / "s.zarr"
    result = dump(out, "fake:4:10:16", "--teacher", f"timm:{TINY}", "--teacher-init", "random")
    assert result.exit_code == 0, result.stderr
    prep = open_store(str(out)).meta.teacher.preprocess
    assert prep is not None
    assert prep["mean"] == [0.5] * 3 and prep["std"] == [0.5] * 3
    assert prep["input_size"] == [160, 160] and prep["interpolation"] == "bilinear"
    assert prep["source"] == "timm"
    text = invoke("info", str(out)).stdout
    assert "preprocess mean=0.5,0.5,0.5 std=0.5,0.5,0.5 size=160x160 bilinear (from timm)" in text
    info = json.loads(invoke("info", str(out), "--json").stdout)
    assert info["teacher_preprocess"]["mean"] == [0.5] * 3


def test_command_line_preprocessing_overrides_and_is_recorded(tmp_path: Path) -> None:
    out = tmp_path / "s.zarr"
    opts = [
        "--teacher-size",
        "16",
        "--teacher-mean",
        "0.4,0.4,0.4",
        "--teacher-interpolation",
        "bicubic",
    ]
    result = dump(
        out, "fake:4:10:16", "--teacher", f"timm:{TINY}", "--teacher-init", "random", *opts
    )
    assert result.exit_code == 0, result.stderr
    prep = open_store(str(out)).meta.teacher.preprocess
    assert prep is not None and prep["input_size"] == [16, 16] and prep["mean"] == [0.4] * 3
    assert prep["std"] == [0.5] * 3 and prep["interpolation"] == "bicubic"
    assert prep["overridden"] == ["mean", "input_size", "interpolation"]


def test_a_registry_teacher_records_the_datasets_normalisation(tmp_path: Path) -> None:
    from sortkd_cache.datasets.fake import FAKE_MEAN

    out = tmp_path / "s.zarr"
    assert (
        dump(out, "fake:4:10:8", "--teacher", "resnet8", "--teacher-init", "random").exit_code == 0
    )
    prep = open_store(str(out)).meta.teacher.preprocess
    assert prep is not None and prep["source"] == "dataset"
    assert prep["mean"] == list(FAKE_MEAN) and prep["input_size"] is None


def test_a_store_without_the_record_reads_as_the_datasets_normalisation() -> None:
    from sortkd_cache.pipelines.info import format_info

    info = {
        "store": "old.zarr",
        "schema": 3,
        "tool_version": "0.1.0",
        "created": "x",
        "num_samples": 1,
        "num_views": 1,
        "num_classes": 2,
        "dtype": "float16",
        "chunk_samples": 1,
        "seed": 0,
        "logits": ["raw"],
        "teacher_accuracy": [],
        "kinds": {},
        "dataset": {
            "spec": "digits",
            "split": "train",
            "fingerprint": "f",
            "mean": [0.25],
            "std": [0.5],
        },
        "teacher": {"arch": "digits_mlp", "init": "random", "sha256": None},
        "augment": {"name": "none"},
    }
    assert (
        "preprocess mean=0.25 std=0.5 size=the view's size bilinear (the dataset's "
        "normalisation)" in format_info(info)
    )


def fake_hub_cache(cache: Path, repo: str, filename: str) -> Path:
    """The layout huggingface_hub's cache gives a downloaded file (refs/main -> snapshot)."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    commit = "0" * 40
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snap = folder / "snapshots" / commit
    snap.mkdir(parents=True)
    return snap / filename


def test_pretrained_weights_come_from_the_local_hub_cache(tmp_path: Path, offline: Path) -> None:
    model = random_timm(TINY, 1000, seed=3)
    weights = fake_hub_cache(offline, f"timm/{TINY}", "model.safetensors")
    save_weights(model, weights)
    out = tmp_path / "s.zarr"
    result = dump(
        out,
        "fake:4:1000:16",
        "--teacher",
        f"timm:{TINY}",
        "--teacher-init",
        "pretrained",
        "--teacher-size",
        "32",
    )
    assert result.exit_code == 0, result.stderr
    store = open_store(str(out))
    assert store.meta.teacher.init == "pretrained"
    assert store.meta.teacher.sha256 == file_sha256(weights)
    views = torch.nn.functional.interpolate(
        stored_views(out, 1).float(), size=32, mode="bilinear", antialias=True
    )
    want = timm_forward(model, views.round().clamp(0, 255).to(torch.uint8))
    got = torch.from_numpy(np.asarray(store.logits("raw")[:, 1]))
    torch.testing.assert_close(got, want, atol=2e-2, rtol=0)  # uint8 resize rounding


def test_torchvision_pretrained_weights_come_from_the_torch_hub_cache(tmp_path: Path) -> None:
    import torchvision.models as tvm

    weights = tvm.get_model_weights("mobilenet_v3_small").DEFAULT
    torch.manual_seed(0)
    model = tvm.mobilenet_v3_small(num_classes=1000).eval()
    path = tmp_path / "torch" / "hub" / "checkpoints" / Path(weights.url).name
    path.parent.mkdir(parents=True)
    torch.save(model.state_dict(), path)
    out = tmp_path / "s.zarr"
    result = dump(
        out,
        "fake:2:1000:16",
        "--teacher",
        "mobilenet_v3_small",
        "--teacher-init",
        "pretrained",
        "--teacher-size",
        "32",
    )
    assert result.exit_code == 0, result.stderr
    meta = open_store(str(out)).meta
    assert meta.teacher.sha256 == file_sha256(path)
    prep = meta.teacher.preprocess
    assert prep is not None and prep["source"] == "torchvision"
    assert prep["mean"] == [0.485, 0.456, 0.406] and prep["interpolation"] == "bilinear"


def test_unknown_timm_name_exits_2(tmp_path: Path) -> None:
    result = dump(
        tmp_path / "s.zarr",
        "fake:4:10:8",
        "--teacher",
        "timm:resnet_nope",
        "--teacher-init",
        "random",
    )
    one_error_line(result, "timm:resnet_nope")
    result = dump(
        tmp_path / "s.zarr",
        "fake:4:10:8",
        "--teacher",
        "timm:test_resnet.nope",
        "--teacher-init",
        "random",
    )
    one_error_line(result, "'nope'", "r160_in1k")


def test_timm_not_installed_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError
    result = dump(
        tmp_path / "s.zarr", "fake:4:10:8", "--teacher", f"timm:{TINY}", "--teacher-init", "random"
    )
    one_error_line(result, "pip install 'sortkd-cache[timm]'")
    assert not (tmp_path / "s.zarr").exists()


def test_checkpoint_that_does_not_fit_exits_2(tmp_path: Path) -> None:
    ckpt = tmp_path / "other.safetensors"
    save_weights(random_timm("test_byobnet", 10), ckpt)
    result = dump(
        tmp_path / "s.zarr", "fake:4:10:8", "--teacher", f"timm:{TINY}", "--teacher-ckpt", str(ckpt)
    )
    one_error_line(result, str(ckpt), f"timm:{TINY}", "missing key")


def test_pretrained_offline_not_in_the_cache_exits_2(tmp_path: Path) -> None:
    result = dump(
        tmp_path / "s.zarr",
        "fake:4:1000:8",
        "--teacher",
        f"timm:{TINY}",
        "--teacher-init",
        "pretrained",
    )
    one_error_line(result, f"timm:{TINY}", "not in the local cache", "HF_HUB_OFFLINE")
    result = dump(
        tmp_path / "s.zarr",
        "fake:4:1000:8",
        "--teacher",
        "mobilenet_v3_small",
        "--teacher-init",
        "pretrained",
    )
    one_error_line(result, "mobilenet_v3_small", "not in the local cache")


def test_pretrained_with_other_classes_exits_2(tmp_path: Path) -> None:
    result = dump(
        tmp_path / "s.zarr",
        "fake:4:10:8",
        "--teacher",
        f"timm:{TINY}",
        "--teacher-init",
        "pretrained",
    )
    one_error_line(result, "1000 classes", "10")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--teacher-mean", "a,b"),
        ("--teacher-size", "0"),
        ("--teacher-std", "0,1,1"),
        ("--teacher-mean", "0.5,0.5"),
    ],
)
def test_bad_preprocessing_options_exit_2(tmp_path: Path, option: str, value: str) -> None:
    result = dump(
        tmp_path / "s.zarr",
        "fake:4:10:8",
        "--teacher",
        "resnet8",
        "--teacher-init",
        "random",
        option,
        value,
    )
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "s.zarr").exists()


def test_timm_students_build_by_name() -> None:
    from sortkd_cache.models import create_model, model_exists

    model = create_model(f"timm:{TINY}", num_classes=7)
    assert model_exists("timm:test_resnet")
    with torch.inference_mode():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


def test_an_online_teacher_sees_what_dump_gives_it() -> None:
    """train --online-teacher: the student's normalised batch goes back to its uint8 pixels
    exactly, then through the teacher's own preprocessing."""
    from sortkd_cache.augment import normalize
    from sortkd_cache.datasets import load_dataset
    from sortkd_cache.models import TeacherPreprocess
    from sortkd_cache.pipelines.train._data import OnlineTeacher

    ds = load_dataset("fake:6:10:16", "train")
    pixels = ds.images(np.arange(6))
    prep = TeacherPreprocess((0.5,) * 3, (0.5,) * 3, (32, 32), "bicubic", "timm")
    online = OnlineTeacher(torch.nn.Identity(), None, None, None, (ds.info, prep))
    x = normalize(pixels, ds.info.mean, ds.info.std)
    assert torch.equal(online.teacher_inputs(x), prep.apply(pixels))


def test_resume_refuses_other_teacher_preprocessing(tmp_path: Path) -> None:
    out = tmp_path / "s.zarr"
    base = ("--teacher", "resnet8", "--teacher-init", "random", "--chunk-samples", "2")
    assert dump(out, "fake:4:10:8", *base).exit_code == 0
    result = dump(out, "fake:4:10:8", *base, "--resume", "--teacher-mean", "0.5,0.5,0.5")
    one_error_line(result, "teacher preprocessing")


def test_a_timm_student_without_timm_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from sortkd_cache.errors import ModelError
    from sortkd_cache.models import model_exists

    assert not model_exists("timm:no_such_model")
    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(ModelError, match=r"sortkd-cache\[timm\]"):
        model_exists("timm:resnet18")
