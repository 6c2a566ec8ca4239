"""``digits``: scikit-learn's bundled 8x8 handwritten digits (offline, 1797 samples).

Pixels 0..16 become uint8 ``round(v * 255 / 16)`` (round half to even), shape [1, 8, 8].
Fixed split: ``test`` = samples whose index % 5 == 0 (360), ``train`` = the rest (1437), both
in the original order.
"""

from __future__ import annotations

import numpy as np
import torch

from ._base import DatasetInfo, ImageDataset

__all__ = ["DIGITS_MEAN", "DIGITS_STD", "load_digits"]

# Per-channel statistics of the train split in 0..1 units (computed once, hard-coded).
DIGITS_MEAN: tuple[float, ...] = (0.30526090916533627,)
DIGITS_STD: tuple[float, ...] = (0.37615755809211254,)


def load_digits(split: str) -> ImageDataset:
    """The ``train`` or ``test`` split of ``digits`` (see the module doc)."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    data = np.asarray(bunch.data, dtype=np.float64)
    target = np.asarray(bunch.target, dtype=np.int64)
    pixels = np.rint(data * 255.0 / 16.0).astype(np.uint8).reshape(-1, 1, 8, 8)
    is_test = np.arange(len(pixels)) % 5 == 0
    keep = is_test if split == "test" else ~is_test
    images = torch.from_numpy(np.ascontiguousarray(pixels[keep]))
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
