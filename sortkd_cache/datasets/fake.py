"""``fake:N:C:SIZE``: a seeded, learnable synthetic dataset (3 x SIZE x SIZE, C classes).

``train`` has N samples, ``test`` ``max(N // 5, C)``. Every random number comes from the
counter-based generator :func:`sortkd_cache.augment.counter_uniform`, and pixels use only
IEEE basic arithmetic (no ``sin``/``exp``), so the bytes — and the fingerprint — are the same
on every machine and numpy version.

Construction:

* class ``c`` has, per channel, a pattern ``P = sum_k a_k * tri(f_xk * x / SIZE + f_yk * y /
  SIZE + phi_k)`` of three low-frequency triangle waves (``tri(t) = 4 |t - floor(t + 1/2)| -
  1``, integer frequencies 0..2, not both 0), keyed by ``(class, channel)`` only;
* labels are ``arange(n) % C`` shuffled (balanced), keyed by ``(N, C, SIZE, split)``;
* a sample is its class pattern circularly shifted by up to +-2 px, times an amplitude in
  [0.6, 1.4], plus uniform noise in [-64, 64): ``rint(clip(127.5 + 48 * amp * P + noise))``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from ..augment import counter_bits, counter_uniform
from ._base import DatasetInfo, ImageDataset

__all__ = ["FAKE_MEAN", "FAKE_STD", "fake_num_samples", "load_fake"]

# Per-channel statistics of fake:2000:10:32's train split in 0..1 units (hard-coded; by
# construction close for every N, C and SIZE).
FAKE_MEAN: tuple[float, ...] = (0.5001, 0.4998, 0.4999)
FAKE_STD: tuple[float, ...] = (0.1747, 0.1769, 0.1720)

_FAKE_SEED = 0x5EED_FA4E_DA7A_0001
_PATTERN_SEED = 0x5EED_FA4E_7A77_0002
_COMPONENTS = 3
_SPLIT_IDS = {"train": 0, "test": 1}
_NOISE = 64.0
_SIGNAL = 48.0
_MAX_SHIFT = 2


def fake_num_samples(n: int, c: int, split: str) -> int:
    """The number of samples of a split: N for train, max(N // 5, C) for test."""
    return n if split == "train" else max(n // 5, c)


def _tri(t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 4.0 * np.abs(t - np.floor(t + 0.5)) - 1.0


def _patterns(num_classes: int, size: int) -> npt.NDArray[np.float64]:
    """Class patterns float64 [C, 3, SIZE, SIZE], roughly in [-1.5, 1.5]."""
    cls = np.arange(num_classes, dtype=np.int64)[:, None, None]
    ch = np.arange(3, dtype=np.int64)[None, :, None]
    draws = np.arange(4 * _COMPONENTS, dtype=np.int64)[None, None, :]
    u = counter_uniform(_PATTERN_SEED, cls, ch, draws).reshape(num_classes, 3, _COMPONENTS, 4)
    fx = np.floor(u[..., 0] * 3.0)
    fy = np.floor(u[..., 1] * 3.0)
    fx = np.where((fx == 0) & (fy == 0), 1.0, fx)
    phase = u[..., 2]
    amp = 0.5 + 0.5 * u[..., 3]
    grid = np.arange(size, dtype=np.float64) / size
    out = np.zeros((num_classes, 3, size, size), dtype=np.float64)
    for k in range(_COMPONENTS):
        t = (
            fx[:, :, k, None, None] * grid[None, None, None, :]
            + fy[:, :, k, None, None] * grid[None, None, :, None]
            + phase[:, :, k, None, None]
        )
        out = out + amp[:, :, k, None, None] * _tri(t)
    return out / 1.5


def _split_key(n: int, c: int, size: int, split: str) -> int:
    key0 = int(counter_bits(_FAKE_SEED, n, c, size))
    return int(counter_bits(key0, _SPLIT_IDS[split], 0, 0))


def _make(
    key: int, count: int, patterns: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    num_classes, _, size, _ = patterns.shape
    idx = np.arange(count, dtype=np.int64)
    order = np.argsort(counter_uniform(key, idx, 0, 0), kind="stable")
    labels = (idx % num_classes)[order]
    per_sample = counter_uniform(key, idx[:, None], 1, np.arange(3, dtype=np.int64)[None, :])
    amp = 0.6 + 0.8 * per_sample[:, 0]
    span = 2 * _MAX_SHIFT + 1
    dy = np.floor(per_sample[:, 1] * span).astype(np.int64) - _MAX_SHIFT
    dx = np.floor(per_sample[:, 2] * span).astype(np.int64) - _MAX_SHIFT
    pixels = 3 * size * size
    lanes = (pixels + 3) // 4
    images = np.empty((count, 3, size, size), dtype=np.uint8)
    chunk = max(1, (1 << 21) // pixels)
    ar = np.arange(size, dtype=np.int64)
    for start in range(0, count, chunk):
        sl = slice(start, min(start + chunk, count))
        b = sl.stop - start
        rows = (ar[None, :] - dy[sl, None]) % size
        cols = (ar[None, :] - dx[sl, None]) % size
        base = patterns[
            labels[sl, None, None, None],
            np.arange(3)[None, :, None, None],
            rows[:, None, :, None],
            cols[:, None, None, :],
        ]
        bits = counter_bits(key, idx[sl, None], 2, np.arange(lanes, dtype=np.int64)[None, :])
        shifts = np.arange(4, dtype=np.uint64) * np.uint64(16)
        words = (bits[:, :, None] >> shifts[None, None, :]) & np.uint64(0xFFFF)
        u = words.reshape(b, -1)[:, :pixels].astype(np.float64) * (1.0 / 65536.0)
        noise = (2.0 * u - 1.0) * _NOISE
        value = 127.5 + _SIGNAL * amp[sl, None, None, None] * base + noise.reshape(b, 3, size, size)
        images[sl] = np.rint(np.clip(value, 0.0, 255.0)).astype(np.uint8)
    return images, labels


def load_fake(n: int, c: int, size: int, split: str) -> ImageDataset:
    """The ``train`` or ``test`` split of ``fake:n:c:size`` (see the module doc)."""
    count = fake_num_samples(n, c, split)
    images, labels = _make(_split_key(n, c, size, split), count, _patterns(c, size))
    info = DatasetInfo(
        name="fake",
        spec=f"fake:{n}:{c}:{size}",
        split=split,
        num_samples=count,
        num_classes=c,
        channels=3,
        image_size=(size, size),
        mean=FAKE_MEAN,
        std=FAKE_STD,
        default_augment="cifar",
    )
    return ImageDataset(info, labels, torch.from_numpy(images))
