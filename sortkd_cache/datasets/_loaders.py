"""How a split of each of this package's datasets loads from its parsed SPEC (torch).

The registry (:mod:`._spec`) names these functions as lazy targets
(``sortkd_cache.datasets._loaders:digits``): parsing and listing dataset names import none
of this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._base import ImageDataset
from .cifar import load_cifar
from .digits import load_digits
from .digits100 import load_digits100
from .fake import load_fake
from .imagefolder import load_imagefolder

if TYPE_CHECKING:
    from ._spec import DatasetSpec

__all__ = ["cifar", "digits", "digits100", "fake", "imagefolder"]


def digits(p: DatasetSpec, split: str, root: str | None, download: bool) -> ImageDataset:
    return load_digits(split)


def digits100(p: DatasetSpec, split: str, root: str | None, download: bool) -> ImageDataset:
    return load_digits100(split, int(p.args[0]) if p.args else None)


def fake(p: DatasetSpec, split: str, root: str | None, download: bool) -> ImageDataset:
    n, c, size = p.fake_params()
    return load_fake(n, c, size, split)


def imagefolder(p: DatasetSpec, split: str, root: str | None, download: bool) -> ImageDataset:
    return load_imagefolder(p.args[0], split)


def cifar(p: DatasetSpec, split: str, root: str | None, download: bool) -> ImageDataset:
    return load_cifar(p.name, split, data_root=root, download=download)
