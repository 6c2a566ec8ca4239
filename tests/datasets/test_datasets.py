from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sortkd_cache.datasets import (
    DatasetInfo,
    DatasetSpec,
    ImageDataset,
    ImageFolderDataset,
    load_dataset,
    parse_dataset_spec,
)
from sortkd_cache.errors import DatasetError

PIL_Image = pytest.importorskip("PIL.Image")


# ----------------------------------------------------------------------------- specs


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("digits", DatasetSpec("digits")),
        ("cifar10", DatasetSpec("cifar10")),
        ("cifar100", DatasetSpec("cifar100")),
        ("fake:100:10:32", DatasetSpec("fake", ("100", "10", "32"))),
        ("fake:0100:10:032", DatasetSpec("fake", ("100", "10", "32"))),
        ("imagefolder:/data/my:set", DatasetSpec("imagefolder", ("/data/my:set",))),
    ],
)
def test_parse_good_specs(spec: str, expected: DatasetSpec) -> None:
    assert parse_dataset_spec(spec) == expected


def test_spec_strings() -> None:
    assert str(parse_dataset_spec("fake:07:3:9")) == "fake:7:3:9"
    assert parse_dataset_spec("fake:07:3:9").fake_params() == (7, 3, 9)
    folder = parse_dataset_spec("imagefolder:/abs/path/to/pets/")
    assert str(folder) == "imagefolder:/abs/path/to/pets/"
    assert folder.canonical == "imagefolder:pets"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "cifar1000",
            "unknown dataset 'cifar1000'; known: cifar10, cifar100, digits, digits100[:N], "
            "fake:N:C:SIZE, imagefolder:PATH",
        ),
        ("", "unknown dataset ''"),
        ("fake:10:x:32", "C must be an integer, got 'x'"),
        ("fake:0:10:32", "N must be >= 1, got 0"),
        ("fake:10:1:32", "C must be >= 2, got 1"),
        ("fake:10:2:7", "SIZE must be >= 8, got 7"),
        ("fake:10:2", "expected fake:N:C:SIZE"),
        ("fake", "expected fake:N:C:SIZE"),
        ("fake:-1:2:8", "N must be an integer, got '-1'"),
        ("imagefolder:", "expected imagefolder:PATH"),
        ("digits:3", "takes no arguments"),
    ],
)
def test_bad_specs_raise(spec: str, message: str) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset(spec)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(DatasetError):
        parse_dataset_spec(spec)


def test_unknown_split_raises() -> None:
    with pytest.raises(DatasetError, match="unknown split 'validation'; known: test, train"):
        load_dataset("digits", "validation")


# ----------------------------------------------------------------------------- digits


def test_digits() -> None:
    from sklearn.datasets import load_digits as sk_load

    train = load_dataset("digits")
    test = load_dataset("digits", "test")
    assert (len(train), len(test)) == (1437, 360)
    assert train.tensor is not None and test.tensor is not None
    assert train.tensor.shape == (1437, 1, 8, 8)
    assert train.tensor.dtype == torch.uint8
    assert train.labels.dtype == np.int64
    assert train.num_classes == 10
    raw = sk_load()
    expected = np.rint(raw.data * 255 / 16).astype(np.uint8).reshape(-1, 1, 8, 8)
    np.testing.assert_array_equal(test.tensor.numpy(), expected[0::5])
    np.testing.assert_array_equal(test.labels, raw.target[0::5])
    keep = np.arange(1797) % 5 != 0
    np.testing.assert_array_equal(train.tensor.numpy(), expected[keep])
    assert int(train.tensor.max()) == 255
    info = train.info
    assert (info.name, info.spec, info.split, info.channels) == ("digits", "digits", "train", 1)
    assert info.image_size == (8, 8)
    assert info.default_augment == "digits"
    x = train.tensor.numpy() / 255.0
    assert info.mean[0] == pytest.approx(x.mean(), abs=1e-9)
    assert info.std[0] == pytest.approx(x.std(), abs=1e-9)
    np.testing.assert_array_equal(train.image_sizes(), np.tile([8, 8], (1437, 1)))


def test_digits_image_accessors() -> None:
    ds = load_dataset("digits", "test")
    assert ds.tensor is not None
    original = ds.tensor[3].clone()
    img = ds.image(3)
    assert torch.equal(img, original)
    img[0, 0, 0] += 1  # a copy: the dataset is untouched
    assert torch.equal(ds.tensor[3], original)
    batch = ds.images(np.array([5, 1, 5]))
    assert isinstance(batch, torch.Tensor)
    assert torch.equal(batch, ds.tensor[[5, 1, 5]])
    image, label = ds[7]
    assert torch.equal(image, ds.tensor[7])
    assert label == int(ds.labels[7])
    with pytest.raises(IndexError):
        ds.image(360)
    with pytest.raises(ValueError):
        ds.labels[0] = 3  # read-only


# ----------------------------------------------------------------------------- fake


def test_fake_shapes_labels_and_determinism() -> None:
    train = load_dataset("fake:200:7:16")
    test = load_dataset("fake:200:7:16", "test")
    assert (len(train), len(test)) == (200, 40)
    assert len(load_dataset("fake:20:7:16", "test")) == 7  # max(N // 5, C)
    assert train.tensor is not None
    assert train.tensor.shape == (200, 3, 16, 16)
    assert train.info.spec == "fake:200:7:16"
    assert train.info.default_augment == "cifar"
    counts = np.bincount(train.labels, minlength=7)
    assert counts.max() - counts.min() <= 1
    again = load_dataset("fake:200:7:16")
    assert again.tensor is not None
    assert torch.equal(train.tensor, again.tensor)
    np.testing.assert_array_equal(train.labels, again.labels)
    assert train.fingerprint() == again.fingerprint()
    assert train.fingerprint() != test.fingerprint()
    assert train.fingerprint() != load_dataset("fake:200:7:17").fingerprint()
    assert train.fingerprint().startswith("sha256:")
    assert len(train.fingerprint()) == len("sha256:") + 64


def test_fake_is_learnable_and_stats_match() -> None:
    train = load_dataset("fake:600:6:16")
    test = load_dataset("fake:600:6:16", "test")
    assert train.tensor is not None and test.tensor is not None
    xtr = train.tensor.reshape(len(train), -1).double().numpy()
    xte = test.tensor.reshape(len(test), -1).double().numpy()
    centroids = np.stack([xtr[train.labels == c].mean(0) for c in range(6)])
    dist = ((xte[:, None, :] - centroids[None]) ** 2).sum(-1)
    accuracy = (dist.argmin(1) == test.labels).mean()
    assert accuracy > 0.8  # chance is 1/6
    x = train.tensor.double().numpy() / 255.0
    np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), train.info.mean, atol=0.01)
    np.testing.assert_allclose(x.std(axis=(0, 2, 3)), train.info.std, atol=0.01)


def test_fingerprint_changes_with_one_pixel_or_label() -> None:
    ds = load_dataset("fake:50:5:8")
    assert ds.tensor is not None
    tensor = ds.tensor.clone()
    tensor[17, 1, 3, 4] ^= 1
    pixel = ImageDataset(ds.info, ds.labels, tensor)
    labels = ds.labels.copy()
    labels[3] = (labels[3] + 1) % 5
    label = ImageDataset(ds.info, labels, ds.tensor)
    same = ImageDataset(ds.info, ds.labels.copy(), ds.tensor.clone())
    assert same.fingerprint() == ds.fingerprint()
    assert pixel.fingerprint() != ds.fingerprint()
    assert label.fingerprint() != ds.fingerprint()
    assert len({ds.fingerprint(), pixel.fingerprint(), label.fingerprint()}) == 3


def test_dataset_info_round_trip_and_validation() -> None:
    info = load_dataset("fake:20:4:8").info
    data = json.loads(json.dumps(info.to_dict()))
    assert DatasetInfo.from_dict(data) == info
    with pytest.raises(DatasetError, match="malformed dataset info"):
        DatasetInfo.from_dict({"name": "x"})
    with pytest.raises(DatasetError, match="labels outside"):
        ImageDataset(info, np.full(20, 4), torch.zeros((20, 3, 8, 8), dtype=torch.uint8))
    with pytest.raises(DatasetError, match="image tensor"):
        ImageDataset(info, np.zeros(20), torch.zeros((20, 3, 8, 9), dtype=torch.uint8))


# ----------------------------------------------------------------------------- imagefolder


def _write(path: Path, seed: int, size: tuple[int, int], mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img = PIL_Image.fromarray(arr, "RGB")
    if mode != "RGB":
        img = img.convert(mode)
    img.save(path)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "pets"
    _write(root / "train" / "dog" / "b.png", 1, (10, 12))
    _write(root / "train" / "dog" / "a.png", 2, (8, 8))
    _write(root / "train" / "dog" / "sub" / "c.png", 3, (5, 7), mode="L")
    _write(root / "train" / "cat" / "z.PNG", 4, (9, 6))
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    _write(root / "val" / "dog" / "v.png", 5, (6, 6))
    _write(root / "val" / "cat" / "w.png", 6, (7, 9))
    _write(root / "test" / "cat" / "ignored.png", 7, (7, 9))  # val wins over test
    return root


def test_imagefolder_loads(folder: Path) -> None:
    ds = load_dataset(f"imagefolder:{folder}")
    assert isinstance(ds, ImageFolderDataset)
    assert ds.classes == ("cat", "dog")
    assert ds.num_classes == 2
    assert len(ds) == 4
    np.testing.assert_array_equal(ds.labels, [0, 1, 1, 1])
    assert [Path(f).name for f in ds.files] == ["z.PNG", "a.png", "b.png", "c.png"]
    assert ds.tensor is None
    info = ds.info
    assert (info.name, info.spec, info.split) == ("imagefolder", "imagefolder:pets", "train")
    assert info.image_size is None
    assert info.channels == 3
    assert info.default_augment == "imagenet"
    assert info.mean == (0.485, 0.456, 0.406)
    np.testing.assert_array_equal(ds.image_sizes(), [[9, 6], [8, 8], [10, 12], [5, 7]])
    img = ds.image(1)
    assert img.dtype == torch.uint8
    assert img.shape == (3, 8, 8)
    with PIL_Image.open(ds.files[1]) as im:
        expected = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)
    assert torch.equal(img, expected)
    gray = ds.image(3)  # an L-mode PNG decodes to RGB
    assert gray.shape == (3, 5, 7)
    assert torch.equal(gray[0], gray[1])
    batch = ds.images(np.array([2, 0]))
    assert isinstance(batch, list)
    assert [tuple(b.shape) for b in batch] == [(3, 10, 12), (3, 9, 6)]
    test = load_dataset(f"imagefolder:{folder}", "test")
    assert len(test) == 2
    np.testing.assert_array_equal(test.labels, [0, 1])
    assert test.info.split == "test"


def test_imagefolder_fingerprint_is_content_not_path(folder: Path, tmp_path: Path) -> None:
    first = load_dataset(f"imagefolder:{folder}").fingerprint()
    assert load_dataset(f"imagefolder:{folder}").fingerprint() == first
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    shutil.move(str(folder), str(moved))
    ds = load_dataset(f"imagefolder:{moved}")
    assert ds.fingerprint() == first
    assert ds.info.spec == "imagefolder:renamed"
    # One changed pixel changes the fingerprint.
    target = moved / "train" / "dog" / "a.png"
    with PIL_Image.open(target) as im:
        arr = np.array(im)
    arr[0, 0, 0] ^= 1
    PIL_Image.fromarray(arr).save(target)
    assert load_dataset(f"imagefolder:{moved}").fingerprint() != first


def test_imagefolder_label_change_changes_fingerprint(folder: Path) -> None:
    first = load_dataset(f"imagefolder:{folder}").fingerprint()
    # Moving one image to the other class keeps every file's bytes but changes a label.
    (folder / "train" / "dog" / "a.png").rename(folder / "train" / "cat" / "a.png")
    assert load_dataset(f"imagefolder:{folder}").fingerprint() != first


def test_imagefolder_without_train_dir(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    _write(root / "b" / "x.jpg", 1, (4, 4))
    _write(root / "a" / "y.png", 2, (4, 4))
    ds = load_dataset(f"imagefolder:{root}")
    assert ds.classes == ("a", "b")
    np.testing.assert_array_equal(ds.labels, [0, 1])
    with pytest.raises(DatasetError, match="no test split"):
        load_dataset(f"imagefolder:{root}", "test")


def test_imagefolder_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such directory"):
        load_dataset(f"imagefolder:{tmp_path / 'missing'}")
    root = tmp_path / "one"
    _write(root / "train" / "only" / "x.png", 1, (4, 4))
    with pytest.raises(DatasetError, match="at least 2 class folders"):
        load_dataset(f"imagefolder:{root}")
    root = tmp_path / "extra"
    _write(root / "train" / "a" / "x.png", 1, (4, 4))
    _write(root / "train" / "b" / "x.png", 2, (4, 4))
    _write(root / "test" / "c" / "x.png", 3, (4, 4))
    with pytest.raises(DatasetError, match="'c'"):
        load_dataset(f"imagefolder:{root}", "test")
    root = tmp_path / "empty"
    (root / "train" / "a").mkdir(parents=True)
    (root / "train" / "b").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images"):
        load_dataset(f"imagefolder:{root}")
    root = tmp_path / "broken"
    _write(root / "a" / "x.png", 1, (4, 4))
    (root / "b").mkdir(parents=True)
    (root / "b" / "bad.png").write_bytes(b"not a png")
    ds = load_dataset(f"imagefolder:{root}")
    with pytest.raises(DatasetError, match=r"bad\.png"):
        ds.image(1)


# ----------------------------------------------------------------------------- cifar


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_without_data_says_download(name: str, tmp_path: Path) -> None:
    root = tmp_path / "nodata"
    with pytest.raises(DatasetError) as info:
        load_dataset(name, data_root=str(root))
    message = str(info.value)
    assert "--download" in message
    assert str(root) in message
    assert name in message
    assert not root.exists() or not any(root.iterdir())  # nothing downloaded
