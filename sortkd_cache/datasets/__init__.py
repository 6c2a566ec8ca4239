"""Datasets by SPEC (``digits``, ``cifar10``, ``cifar100``, ``imagefolder:PATH``,
``fake:N:C:SIZE``) as uint8 images with labels and a content fingerprint."""

from __future__ import annotations

from ._base import DatasetInfo, ImageDataset, fingerprint_images
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
from .cifar import default_data_root
from .imagefolder import IMAGE_EXTENSIONS, ImageFolderDataset

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
