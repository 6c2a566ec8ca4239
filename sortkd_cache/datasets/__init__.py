"""Datasets by SPEC (``digits``, ``cifar10``, ``cifar100``, ``imagefolder:PATH``,
``fake:N:C:SIZE``) as uint8 images with labels and a content fingerprint.

The registry and the SPEC parser read without torch (``sortkd-cache list datasets``); the
dataset classes and loaders (torch) are imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._registry import lazy_names
from ._spec import (
    DATASETS,
    KNOWN_DATASETS,
    ROOTED,
    SPLITS,
    DatasetKind,
    DatasetSpec,
    load_dataset,
    parse_dataset_spec,
    spec_classes,
)

if TYPE_CHECKING:
    from ._base import DatasetInfo, ImageDataset, fingerprint_images
    from .cifar import default_data_root
    from .imagefolder import IMAGE_EXTENSIONS, ImageFolderDataset

#: The names whose modules import torch, by module: loaded on first use.
__getattr__ = lazy_names(
    __name__,
    {
        **dict.fromkeys(("DatasetInfo", "ImageDataset", "fingerprint_images"), "_base"),
        "default_data_root": "cifar",
        **dict.fromkeys(("IMAGE_EXTENSIONS", "ImageFolderDataset"), "imagefolder"),
    },
)

__all__ = [
    "DATASETS",
    "IMAGE_EXTENSIONS",
    "KNOWN_DATASETS",
    "ROOTED",
    "SPLITS",
    "DatasetInfo",
    "DatasetKind",
    "DatasetSpec",
    "ImageDataset",
    "ImageFolderDataset",
    "default_data_root",
    "fingerprint_images",
    "load_dataset",
    "parse_dataset_spec",
    "spec_classes",
]
