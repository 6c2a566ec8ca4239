"""``digits100``: two-digit numbers 00-99 made of two scikit-learn digits side by side.

100 classes with real structure, offline: class ``10 * a + b`` is the digit image of ``a``
(left, columns 0-7) next to one of ``b`` (right, columns 8-15), uint8 [1, 8, 16]. Classes that
share a digit share half their picture, so they are genuinely confusable (``17`` with ``71``,
``11``, ``77`` and every ``1x`` and ``x7``): the knowledge a teacher's soft labels carry.

* Sources: the 1797 digits of ``digits``, converted as there (``round(v * 255 / 16)``). Train
  images are built only from ``digits``' train sources (index % 5 != 0), test images only from
  its test sources (index % 5 == 0): the splits share no source image.
* Sizes: ``digits100`` has 60 train and 20 test images per class (6000 / 2000);
  ``digits100:N`` has N train images per class (1 <= N <= 1000; the test split stays 20 per
  class, so every N is scored on the same test images).
* Order: sample ``i`` has class ``i % 100``, so every prefix of 100 k samples holds k of each.
* Sampling: image ``i`` of class ``10a + b`` takes a uniform random source of digit ``a`` and
  one of digit ``b`` from a NumPy PCG64 generator seeded with ``(split, 20260001)``: the
  first ``n`` images of a class do not depend on N, and the dataset is identical on every
  machine (its content fingerprint pins it). Built in milliseconds, kept in memory per split.
* Normalisation: the ``digits`` train statistics (the halves are ``digits`` train images).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt
import torch

from ..errors import DatasetError
from ._base import DatasetInfo, ImageDataset
from ._spec import MAX_PER_CLASS
from .digits import DIGITS_MEAN, DIGITS_STD, digit_images, source_indices

__all__ = [
    "DEFAULT_TRAIN_PER_CLASS",
    "MAX_PER_CLASS",
    "TEST_PER_CLASS",
    "load_digits100",
    "pair_sources",
]

DEFAULT_TRAIN_PER_CLASS = 60
TEST_PER_CLASS = 20
_SEED = 20260001
_SPLIT_IDS = {"train": 0, "test": 1}


def pair_sources(split: str, per_class: int) -> npt.NDArray[np.int64]:
    """int64 [100 * per_class, 2]: the (left, right) source digit index of every image."""
    _, labels = digit_images()
    pool = source_indices(split)
    by_digit = [pool[labels[pool] == d] for d in range(10)]
    rng = np.random.Generator(np.random.PCG64([_SPLIT_IDS[split], _SEED]))
    # per class, per sample: two uniform draws, so a class's first n draws ignore per_class
    u = rng.random((100, MAX_PER_CLASS, 2))[:, :per_class]
    out = np.empty((per_class, 100, 2), dtype=np.int64)
    for c in range(100):
        for side, digit in enumerate(divmod(c, 10)):
            choices = by_digit[digit]
            out[:, c, side] = choices[(u[c, :, side] * len(choices)).astype(np.int64)]
    return out.reshape(-1, 2)  # sample i = k * 100 + c: class i % 100


@lru_cache(maxsize=4)
def _build(split: str, per_class: int) -> tuple[torch.Tensor, npt.NDArray[np.int64]]:
    images, _ = digit_images()
    pairs = pair_sources(split, per_class)
    pixels = np.concatenate([images[pairs[:, 0]], images[pairs[:, 1]]], axis=2)
    labels = np.tile(np.arange(100, dtype=np.int64), per_class)
    tensor = torch.from_numpy(np.ascontiguousarray(pixels[:, None]))
    return tensor, labels


def load_digits100(split: str, per_class: int | None = None) -> ImageDataset:
    """The ``train`` or ``test`` split of ``digits100`` (``per_class``: train images per
    class, default 60; see the module doc)."""
    n = DEFAULT_TRAIN_PER_CLASS if per_class is None else per_class
    if not 1 <= n <= MAX_PER_CLASS:
        raise DatasetError(f"digits100: N must be in 1..{MAX_PER_CLASS}, got {n}")
    count = TEST_PER_CLASS if split == "test" else n
    tensor, labels = _build(split, count)
    spec = "digits100" if per_class is None else f"digits100:{per_class}"
    info = DatasetInfo(
        name="digits100",
        spec=spec,
        split=split,
        num_samples=len(labels),
        num_classes=100,
        channels=1,
        image_size=(8, 16),
        mean=DIGITS_MEAN,
        std=DIGITS_STD,
        default_augment="digits",
    )
    return ImageDataset(info, labels, tensor.clone(), classes=[f"{c:02d}" for c in range(100)])
