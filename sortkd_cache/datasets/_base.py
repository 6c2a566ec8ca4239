"""The dataset object every loader returns: labels, uint8 images and a content fingerprint.

Fingerprint (``"sha256:<hex>"``), exact serialisation hashed, in this order:

* in-memory datasets (digits, fake, cifar): ``b"sortkd-dataset/images/v1\\0"``, the sample
  count as int64 little-endian, the labels as int64 little-endian, then for every sample in
  order its shape ``(C, H, W)`` as three int64 little-endian and its pixels as C-contiguous
  uint8 (CHW).
* folder datasets (imagefolder): ``b"sortkd-dataset/files/v1\\0"``, the sample count and the
  labels as above, then for every sample in order its file's byte length (int64
  little-endian) and its raw file bytes (no decoding: fast, and exact for the file content).

Neither depends on file names or paths: moving or renaming the folder keeps the fingerprint,
changing one pixel or one label changes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import torch

from ..errors import DatasetError

__all__ = ["DatasetInfo", "ImageDataset", "fingerprint_images"]

_IMAGES_TAG = b"sortkd-dataset/images/v1\0"
FILES_TAG = b"sortkd-dataset/files/v1\0"


@dataclass(frozen=True)
class DatasetInfo:
    """Identity and statistics of one split of one dataset (no absolute paths)."""

    name: str
    spec: str
    split: str
    num_samples: int
    num_classes: int
    channels: int
    image_size: tuple[int, int] | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    default_augment: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["image_size"] = None if self.image_size is None else list(self.image_size)
        out["mean"] = list(self.mean)
        out["std"] = list(self.std)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetInfo:
        try:
            size = data["image_size"]
            return cls(
                name=str(data["name"]),
                spec=str(data["spec"]),
                split=str(data["split"]),
                num_samples=int(data["num_samples"]),
                num_classes=int(data["num_classes"]),
                channels=int(data["channels"]),
                image_size=None if size is None else (int(size[0]), int(size[1])),
                mean=tuple(float(v) for v in data["mean"]),
                std=tuple(float(v) for v in data["std"]),
                default_augment=str(data["default_augment"]),
            )
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise DatasetError(f"malformed dataset info {data!r}: {exc!r}") from exc


class _Hash(Protocol):
    """A hashlib hash: what :func:`feed_header` feeds."""

    def update(self, data: bytes, /) -> None: ...


def feed_header(h: _Hash, tag: bytes, labels: npt.NDArray[np.int64]) -> None:
    """Feed the fingerprint preamble (tag, sample count, labels) into hash ``h``."""
    h.update(tag)
    h.update(np.int64(len(labels)).astype("<i8").tobytes())
    h.update(np.ascontiguousarray(labels, dtype="<i8").tobytes())


def fingerprint_images(
    labels: npt.ArrayLike, images: Iterable[torch.Tensor] | npt.NDArray[np.uint8]
) -> str:
    """The in-memory fingerprint (module doc) of ``labels`` and uint8 [C, H, W] ``images``."""
    h = hashlib.sha256()
    feed_header(h, _IMAGES_TAG, np.asarray(labels, dtype=np.int64))
    if isinstance(images, torch.Tensor):
        images = np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.uint8)
    for img in images:
        if isinstance(img, torch.Tensor):
            img = img.detach().cpu().numpy()
        arr = np.ascontiguousarray(img, dtype=np.uint8)
        h.update(np.asarray(arr.shape, dtype="<i8").tobytes())
        h.update(arr.data)
    return "sha256:" + h.hexdigest()


class ImageDataset:
    """One split of an image classification dataset with uint8 [C, H, W] images.

    Held in memory when ``tensor`` is given (uint8 [N, C, H, W]); folder-backed subclasses
    pass ``tensor=None`` and override :meth:`image`, :meth:`image_sizes` and
    :meth:`_compute_fingerprint`. ``labels`` is a read-only int64 array.
    """

    def __init__(
        self,
        info: DatasetInfo,
        labels: npt.ArrayLike,
        tensor: torch.Tensor | None = None,
        classes: Sequence[str] | None = None,
    ) -> None:
        lab = np.array(labels, dtype=np.int64)
        if lab.ndim != 1 or len(lab) != info.num_samples:
            raise DatasetError(
                f"dataset {info.spec!r}: labels shape {list(lab.shape)} does not match "
                f"{info.num_samples} samples"
            )
        if len(lab) and (lab.min() < 0 or lab.max() >= info.num_classes):
            raise DatasetError(
                f"dataset {info.spec!r}: labels outside 0..{info.num_classes - 1} "
                f"(min {int(lab.min())}, max {int(lab.max())})"
            )
        if tensor is not None:
            expect = (info.num_samples, info.channels, *(info.image_size or (-1, -1)))
            if tensor.dtype != torch.uint8 or tuple(tensor.shape) != expect:
                raise DatasetError(
                    f"dataset {info.spec!r}: image tensor {tensor.dtype} {list(tensor.shape)} "
                    f"does not match uint8 {list(expect)}"
                )
        lab.flags.writeable = False
        self.info = info
        self.labels: npt.NDArray[np.int64] = lab
        self.tensor = tensor
        self.classes: tuple[str, ...] = (
            tuple(classes)
            if classes is not None
            else tuple(str(c) for c in range(info.num_classes))
        )
        self._fingerprint: str | None = None
        self._sizes: npt.NDArray[np.int64] | None = None

    def __len__(self) -> int:
        return self.info.num_samples

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(spec={self.info.spec!r}, split={self.info.split!r}, "
            f"num_samples={self.info.num_samples}, num_classes={self.info.num_classes})"
        )

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    def _check_index(self, i: int) -> int:
        n = self.info.num_samples
        j = int(i)
        if not -n <= j < n:
            raise IndexError(f"sample index {j} out of range for {n} samples")
        return j % n

    def image(self, i: int) -> torch.Tensor:
        """Sample ``i`` as a new uint8 tensor [C, H, W]."""
        j = self._check_index(i)
        if self.tensor is None:
            raise NotImplementedError(f"{type(self).__name__} must implement image()")
        return self.tensor[j].clone()

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        """``(image uint8 [C, H, W], label)`` — usable as a torch map-style dataset."""
        j = self._check_index(i)
        return self.image(j), int(self.labels[j])

    def images(self, indices: npt.ArrayLike) -> list[torch.Tensor] | torch.Tensor:
        """Samples ``indices``: a stacked uint8 [B, C, H, W] tensor when the images are held in
        memory (fixed size), else a list of uint8 [C, H, W] tensors."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if self.tensor is not None:
            n = self.info.num_samples
            if idx.size and (idx.min() < -n or idx.max() >= n):
                raise IndexError(f"sample indices out of range for {n} samples")
            return self.tensor[torch.from_numpy(idx % max(n, 1))]
        return [self.image(int(i)) for i in idx]

    def image_sizes(self) -> npt.NDArray[np.int64]:
        """(H, W) of every sample, int64 [N, 2] (read-only)."""
        if self._sizes is None:
            if self.info.image_size is None:
                raise NotImplementedError(f"{type(self).__name__} must implement image_sizes()")
            sizes = np.empty((self.info.num_samples, 2), dtype=np.int64)
            sizes[:] = self.info.image_size
            sizes.flags.writeable = False
            self._sizes = sizes
        return self._sizes

    def fingerprint(self) -> str:
        """``"sha256:<hex>"`` over labels and image content (see the module doc); cached."""
        if self._fingerprint is None:
            self._fingerprint = self._compute_fingerprint()
        return self._fingerprint

    def _compute_fingerprint(self) -> str:
        if self.tensor is None:
            raise NotImplementedError(f"{type(self).__name__} must implement fingerprinting")
        return fingerprint_images(self.labels, self.tensor)
