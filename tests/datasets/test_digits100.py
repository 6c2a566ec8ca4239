"""``digits100``: deterministic, disjoint splits, every class populated, real structure."""

from __future__ import annotations

import numpy as np
import pytest

from sortkd_cache.datasets import DatasetSpec, load_dataset, parse_dataset_spec
from sortkd_cache.datasets import digits as d10
from sortkd_cache.datasets import digits100 as d100
from sortkd_cache.errors import DatasetError

#: The default train split's fingerprint: a change here changes every digits100 store's identity.
TRAIN_FINGERPRINT = "sha256:ace2f2d3603af1494e2500670f3197c8c3e1c8ff9d72aedfdcdb2a1713dce5dc"


def test_deterministic_same_fingerprint_twice() -> None:
    first = load_dataset("digits100").fingerprint()
    d100._build.cache_clear()
    d10.digit_images.cache_clear()
    again = load_dataset("digits100")
    assert again.fingerprint() == first == TRAIN_FINGERPRINT
    assert load_dataset("digits100", "test").fingerprint() != first


@pytest.mark.parametrize(("split", "per_class"), [("train", 60), ("test", 20)])
def test_every_class_populated_in_order(split: str, per_class: int) -> None:
    ds = load_dataset("digits100", split)
    assert ds.num_classes == 100 and len(ds) == 100 * per_class
    assert np.array_equal(np.bincount(ds.labels, minlength=100), np.full(100, per_class))
    assert np.array_equal(ds.labels, np.arange(len(ds)) % 100)
    assert ds.info.image_size == (8, 16) and ds.info.channels == 1
    assert ds.classes[7] == "07" and ds.classes[71] == "71"


def test_splits_share_no_source_image() -> None:
    train_pool = set(d10.source_indices("train").tolist())
    test_pool = set(d10.source_indices("test").tolist())
    assert not train_pool & test_pool and len(train_pool | test_pool) == 1797
    train_used = set(d100.pair_sources("train", d100.DEFAULT_TRAIN_PER_CLASS).ravel().tolist())
    test_used = set(d100.pair_sources("test", d100.TEST_PER_CLASS).ravel().tolist())
    assert train_used <= train_pool and test_used <= test_pool
    assert len(train_used) > 1000  # the sources are spread, not a few reused


@pytest.mark.parametrize("split", ["train", "test"])
def test_images_are_the_two_source_digits_of_the_label(split: str) -> None:
    images, labels = d10.digit_images()
    ds = load_dataset("digits100", split)
    pairs = d100.pair_sources(split, len(ds) // 100)
    assert np.array_equal(labels[pairs[:, 0]] * 10 + labels[pairs[:, 1]], ds.labels)
    pixels = ds.tensor.numpy()[:, 0]  # type: ignore[union-attr]
    assert np.array_equal(pixels[:, :, :8], images[pairs[:, 0]])
    assert np.array_equal(pixels[:, :, 8:], images[pairs[:, 1]])


def test_classes_sharing_a_digit_share_half_the_picture() -> None:
    """The structure a teacher's soft labels carry: 17 looks more like 71, 11, 77, 1x, x7
    than like 50 (mean pixel distance of class means, left and right halves)."""
    ds = load_dataset("digits100")
    x = ds.tensor.numpy().astype(np.float64)[:, 0]  # type: ignore[union-attr]
    means = np.stack([x[ds.labels == c].mean(0) for c in range(100)])
    dist = np.abs(means - means[17]).mean(axis=(1, 2))
    share = [c for c in range(100) if c != 17 and (c // 10 == 1 or c % 10 == 7)]
    other = [c for c in range(100) if c // 10 != 1 and c % 10 != 7]
    assert dist[share].mean() < 0.75 * dist[other].mean()


def test_n_sets_train_size_and_prefixes_agree() -> None:
    small = load_dataset("digits100:5")
    full = load_dataset("digits100")
    assert len(small) == 500 and small.info.spec == "digits100:5"
    assert np.array_equal(small.tensor.numpy(), full.tensor.numpy()[:500])  # type: ignore[union-attr]
    assert len(load_dataset("digits100:5", "test")) == 2000  # the same test split
    assert parse_dataset_spec("digits100:007") == DatasetSpec("digits100", ("7",))


@pytest.mark.parametrize("spec", ["digits100:0", "digits100:x", "digits100:1001", "digits100:"])
def test_bad_n_is_refused_naming_it(spec: str) -> None:
    with pytest.raises(DatasetError, match=r"N \(train images per class\)") as info:
        load_dataset(spec)
    assert repr(spec.partition(":")[2]) in str(info.value) and "\n" not in str(info.value)
