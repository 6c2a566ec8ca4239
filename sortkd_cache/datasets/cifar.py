"""``cifar10`` / ``cifar100`` through torchvision (the official python-format archives).

The data live under ``data_root``; they are downloaded only when ``download=True``.
torchvision verifies the files' MD5 checksums before reading them. Images are held in memory
as uint8 [N, 3, 32, 32]; ``train`` has 50000 samples and ``test`` 10000.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..errors import DatasetError
from ._base import DatasetInfo, ImageDataset

__all__ = ["CIFAR_STATS", "default_data_root", "load_cifar"]

# Standard per-channel statistics of the train splits, in 0..1 units.
CIFAR_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
_NUM_CLASSES = {"cifar10": 10, "cifar100": 100}


def default_data_root() -> str:
    """``$SORTKD_DATA_ROOT``, or ``~/.cache/sortkd-cache/data``."""
    root = os.environ.get("SORTKD_DATA_ROOT")
    return root or os.path.join(os.path.expanduser("~"), ".cache", "sortkd-cache", "data")


def load_cifar(
    name: str, split: str, *, data_root: str | None = None, download: bool = False
) -> ImageDataset:
    """The ``train`` or ``test`` split of ``cifar10`` or ``cifar100``."""
    if name not in _NUM_CLASSES:
        raise DatasetError(f"unknown CIFAR dataset {name!r}; known: cifar10, cifar100")
    from torchvision import datasets

    root = os.path.abspath(data_root or default_data_root())
    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    try:
        ds = cls(root=root, train=split == "train", download=download)
    except RuntimeError as exc:
        raise DatasetError(
            f"{name} not found (or corrupted) under data root {root!r}; pass --download "
            f"(download=True) to fetch it, or point --data-root at an existing copy"
        ) from exc
    data = np.ascontiguousarray(np.asarray(ds.data, dtype=np.uint8).transpose(0, 3, 1, 2))
    labels = np.asarray(ds.targets, dtype=np.int64)
    mean, std = CIFAR_STATS[name]
    info = DatasetInfo(
        name=name,
        spec=name,
        split=split,
        num_samples=len(labels),
        num_classes=_NUM_CLASSES[name],
        channels=3,
        image_size=(int(data.shape[2]), int(data.shape[3])),
        mean=mean,
        std=std,
        default_augment="cifar",
    )
    return ImageDataset(info, labels, torch.from_numpy(data), classes=list(ds.classes))
