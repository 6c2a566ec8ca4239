"""``imagefolder:PATH``: a class-per-folder image tree, decoded on demand.

Layout: ``PATH/train/<class>/**/*.<ext>`` and ``PATH/val/<class>/...`` (or ``PATH/test``)
for the ``test`` split. If PATH has no ``train/`` subdirectory, PATH itself is the train split
and there is no test split. Classes are the train split's subdirectory names, sorted; the
test split may lack classes but not add new ones. Within a class, files (searched
recursively, hidden entries skipped) are sorted by their POSIX path relative to the class
folder; samples run class by class. Symlinks: see :mod:`._folder_scan` (each image once; a
link back into the folder, a broken link or a loop is refused). Images are decoded with PIL
to RGB uint8 [3, H, W]; sizes may vary (``info.image_size`` is None). The fingerprint hashes
each file's raw bytes in sample order (see :mod:`sortkd_cache.datasets._base`), never the paths.

Decoding in parallel: :meth:`ImageFolderDataset.images` takes an executor and decodes one
file per task with the same function as the serial path (PIL releases the GIL while it
decodes, so a thread pool scales), so the pixels do not depend on the number of workers.

On a GPU, :func:`decode_jpegs` decodes a batch of JPEG files' bytes in one call of
``torchvision.io.decode_jpeg(..., device="cuda")`` (nvjpeg); other formats, and JPEGs nvjpeg
refuses (CMYK, ...), go through PIL. nvjpeg's pixels can differ from PIL's by JPEG rounding,
so the decoder is part of what a store records.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from concurrent.futures import Executor

import numpy as np
import numpy.typing as npt
import torch

from ..errors import DatasetError
from ._base import FILES_TAG, DatasetInfo, ImageDataset, feed_header
from ._folder_scan import FolderWalker

__all__ = [
    "IMAGE_EXTENSIONS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageFolderDataset",
    "decode_image",
    "decode_jpegs",
    "load_imagefolder",
    "read_bytes",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".bmp",
    ".gif",
    ".jpeg",
    ".jpg",
    ".pgm",
    ".png",
    ".ppm",
    ".tif",
    ".tiff",
    ".webp",
)
IMAGENET_MEAN: tuple[float, ...] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, ...] = (0.229, 0.224, 0.225)
_READ_CHUNK = 1 << 20


def _class_dirs(split_dir: str) -> list[str]:
    return FolderWalker(split_dir, split_dir, IMAGE_EXTENSIONS).class_dirs(split_dir)


def _scan(split_dir: str, classes: list[str], path: str) -> tuple[list[str], list[int]]:
    index = {c: k for k, c in enumerate(classes)}
    walker = FolderWalker(path, split_dir, IMAGE_EXTENSIONS)
    files: list[str] = []
    labels: list[int] = []
    for name in walker.class_dirs(split_dir):
        if name not in index:
            raise DatasetError(
                f"imagefolder {path!r}: class folder {name!r} in {split_dir!r} is not a train class"
            )
        class_dir = os.path.join(split_dir, name)
        for rel in walker.class_files(class_dir):
            files.append(os.path.join(class_dir, *rel.split("/")))
            labels.append(index[name])
    if not files:
        raise DatasetError(
            f"imagefolder {path!r}: no images ({', '.join(IMAGE_EXTENSIONS)}) under {split_dir!r}"
        )
    return files, labels


def decode_image(path: str) -> torch.Tensor:
    """The image file at ``path`` decoded with PIL to RGB uint8 [3, H, W]."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            arr = np.array(im if im.mode == "RGB" else im.convert("RGB"), dtype=np.uint8)
    except OSError as exc:
        raise DatasetError(f"cannot decode image {path!r}: {exc}") from exc
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def read_bytes(path: str) -> torch.Tensor:
    """The raw bytes of the file at ``path`` as a uint8 tensor (for :func:`decode_jpegs`)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise DatasetError(f"cannot read image file {path!r}: {exc}") from exc
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def _is_jpeg(data: torch.Tensor) -> bool:
    return data.numel() > 3 and bytes(data[:3].tolist()) == b"\xff\xd8\xff"


def _decode_jpeg(data: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    from torchvision.io import ImageReadMode, decode_jpeg

    with warnings.catch_warnings():  # torchvision >= 0.29 deprecates its decoders
        warnings.simplefilter("ignore", DeprecationWarning)
        out = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    return list(out)


def decode_jpegs(
    data: list[torch.Tensor], paths: list[str], device: torch.device
) -> list[torch.Tensor]:
    """Files' bytes decoded to RGB uint8 [3, H, W] on ``device``: the JPEGs in one batched
    ``decode_jpeg`` call (nvjpeg on CUDA), the rest (and JPEGs it refuses) with PIL."""
    out: list[torch.Tensor | None] = [None] * len(data)
    jpegs = [k for k, d in enumerate(data) if _is_jpeg(d)]
    try:
        decoded = _decode_jpeg([data[k] for k in jpegs], device) if jpegs else []
    except RuntimeError:  # one bad file fails the batch: decode them one by one
        decoded = []
        for k in jpegs:
            try:
                decoded.append(_decode_jpeg([data[k]], device)[0])
            except RuntimeError:
                decoded.append(decode_image(paths[k]).to(device))
    for k, img in zip(jpegs, decoded, strict=True):
        out[k] = img
    return [
        img if img is not None else decode_image(paths[k]).to(device) for k, img in enumerate(out)
    ]


class ImageFolderDataset(ImageDataset):
    """Folder-backed :class:`ImageDataset`: ``tensor`` is None, images decode on demand."""

    def __init__(
        self, info: DatasetInfo, labels: npt.ArrayLike, files: list[str], classes: list[str]
    ) -> None:
        super().__init__(info, labels, None, classes)
        self.files: tuple[str, ...] = tuple(files)

    def image(self, i: int) -> torch.Tensor:
        return decode_image(self.files[self._check_index(i)])

    def images(  # type: ignore[override]
        self, indices: npt.ArrayLike, pool: Executor | None = None
    ) -> list[torch.Tensor]:
        """Samples ``indices`` as uint8 [3, H, W] tensors, decoded by ``pool``'s workers when
        given (one file per task; the same pixels as the serial path)."""
        paths = self.paths(indices)
        if pool is None:
            return [decode_image(p) for p in paths]
        return list(pool.map(decode_image, paths))

    def paths(self, indices: npt.ArrayLike) -> list[str]:
        """The files of samples ``indices``."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        return [self.files[self._check_index(int(i))] for i in idx]

    def encoded(self, indices: npt.ArrayLike, pool: Executor | None = None) -> list[torch.Tensor]:
        """The raw file bytes of samples ``indices`` (read by ``pool`` when given)."""
        paths = self.paths(indices)
        return (
            list(pool.map(read_bytes, paths)) if pool is not None else list(map(read_bytes, paths))
        )

    def image_sizes(self) -> npt.NDArray[np.int64]:
        """(H, W) of every image from its header only (no decoding); cached, read-only."""
        if self._sizes is None:
            from PIL import Image

            sizes = np.empty((len(self.files), 2), dtype=np.int64)
            for k, path in enumerate(self.files):
                try:
                    with Image.open(path) as im:
                        w, h = im.size
                except OSError as exc:
                    raise DatasetError(f"cannot read image header {path!r}: {exc}") from exc
                sizes[k] = (h, w)
            sizes.flags.writeable = False
            self._sizes = sizes
        return self._sizes

    def _compute_fingerprint(self) -> str:
        h = hashlib.sha256()
        feed_header(h, FILES_TAG, self.labels)
        for path in self.files:
            try:
                with open(path, "rb") as fh:
                    h.update(np.int64(os.fstat(fh.fileno()).st_size).astype("<i8").tobytes())
                    while chunk := fh.read(_READ_CHUNK):
                        h.update(chunk)
            except OSError as exc:
                raise DatasetError(f"cannot read image file {path!r}: {exc}") from exc
        return "sha256:" + h.hexdigest()


def load_imagefolder(path: str, split: str) -> ImageFolderDataset:
    """The ``train`` or ``test`` split of the image tree at ``path`` (see the module doc)."""
    if not os.path.isdir(path):
        raise DatasetError(f"imagefolder: no such directory {path!r}")
    train_dir = os.path.join(path, "train")
    if os.path.isdir(train_dir):
        test_dirs = [os.path.join(path, d) for d in ("val", "test")]
        test_dir = next((d for d in test_dirs if os.path.isdir(d)), None)
    else:
        train_dir, test_dir = path, None
    if split == "train":
        split_dir = train_dir
    elif test_dir is None:
        raise DatasetError(
            f"imagefolder {path!r} has no test split (expected {path!r}/train with /val or /test)"
        )
    else:
        split_dir = test_dir
    classes = _class_dirs(train_dir)
    if len(classes) < 2:
        raise DatasetError(
            f"imagefolder {path!r}: need at least 2 class folders in {train_dir!r}, "
            f"found {len(classes)}"
        )
    files, labels = _scan(split_dir, classes, path)
    info = DatasetInfo(
        name="imagefolder",
        spec="imagefolder:" + os.path.basename(os.path.abspath(path)),
        split=split,
        num_samples=len(files),
        num_classes=len(classes),
        channels=3,
        image_size=None,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        default_augment="imagenet",
    )
    return ImageFolderDataset(info, labels, files, classes)
