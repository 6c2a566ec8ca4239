"""``digits``: scikit-learn's bundled 8x8 handwritten digits (offline, 1797 samples).

Pixels 0..16 become uint8 ``round(v * 255 / 16)`` (round half to even), shape [1, 8, 8].
Fixed split: ``test`` = samples whose index % 5 == 0 (360), ``train`` = the rest (1437), both
in the original order.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt
import torch

from ._base import DatasetInfo, ImageDataset

__all__ = ["DIGITS_MEAN", "DIGITS_STD", "digit_images", "load_digits", "source_indices"]

# Per-channel statistics of the train split in 0..1 units (computed once, hard-coded).
DIGITS_MEAN: tuple[float, ...] = (0.30526090916533627,)
DIGITS_STD: tuple[float, ...] = (0.37615755809211254,)


@lru_cache(maxsize=1)
def digit_images() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """All 1797 digits as uint8 [N, 8, 8] (converted as the module doc says) and their
    labels; read-only, read once per process."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    data = np.asarray(bunch.data, dtype=np.float64)
    pixels = np.rint(data * 255.0 / 16.0).astype(np.uint8).reshape(-1, 8, 8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    pixels.flags.writeable = False
    labels.flags.writeable = False
    return pixels, labels


def source_indices(split: str) -> npt.NDArray[np.int64]:
    """The indices of ``split``'s samples among the 1797 (test: index % 5 == 0)."""
    is_test = np.arange(len(digit_images()[1])) % 5 == 0
    return np.flatnonzero(is_test if split == "test" else ~is_test).astype(np.int64)


def load_digits(split: str) -> ImageDataset:
    """The ``train`` or ``test`` split of ``digits`` (see the module doc)."""
    pixels, target = digit_images()
    keep = source_indices(split)
    images = torch.from_numpy(np.ascontiguousarray(pixels[keep][:, None]))
    labels = target[keep]
    info = DatasetInfo(
        name="digits",
        spec="digits",
        split=split,
        num_samples=len(labels),
        num_classes=10,
        channels=1,
        image_size=(8, 8),
        mean=DIGITS_MEAN,
        std=DIGITS_STD,
        default_augment="digits",
    )
    return ImageDataset(info, labels, images)
