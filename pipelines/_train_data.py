"""Batches for training: replayed views of the images, labels and soft logits.

Two paths give the same batches:

* ``device``: the whole uint8 split sits in device memory (GPU, or CPU memory on a CPU run);
  each batch is gathered and its views replayed there, no host round trip.
* ``loader``: DataLoader workers read the images and replay the views on the CPU (pinned
  memory, non-blocking copies when the device is a GPU) — for data that does not fit.

Soft labels come from the store one whole view at a time (each chunk read once, in a
background thread that prefetches the next epoch's view) and are gathered per batch on the
device.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from sortkd_cache.errors import ConfigError

__all__ = ["Batch", "ViewPrefetcher", "choose_path", "epoch_batches", "epoch_order"]

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (x float, y int64, idx int64) on device


def choose_path(ds: Any, device: torch.device, requested: str) -> str:
    """'device' when the split is in memory and fits comfortably, else 'loader'."""
    if requested not in ("auto", "device", "loader"):
        raise ConfigError(f"unknown --data-path '{requested}'; use auto, device or loader")
    if requested == "device" and ds.tensor is None:
        raise ConfigError("--data-path device needs an in-memory dataset (not imagefolder)")
    if requested != "auto":
        return requested
    if ds.tensor is None:
        return "loader"
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return "device" if ds.tensor.numel() < 0.3 * free else "loader"
    return "device"


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of an epoch: a permutation drawn from (seed, epoch) only."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def _batches_of(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    out = list(torch.split(order, batch_size))
    if len(out) > 1 and out[-1].numel() == 1:  # a batch of one breaks BatchNorm
        out.pop()
    return out


class _ReplayBatches(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    def __init__(
        self,
        ds: Any,
        params: np.ndarray,
        batches: list[torch.Tensor],
        render_u8: Callable[[Any, Any], torch.Tensor],
    ) -> None:
        self.ds, self.params, self.batches, self.render_u8 = ds, params, batches, render_u8

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.batches[i]
        images = self.ds.images(idx.numpy())
        return self.render_u8(images, self.params[idx.numpy()]), idx


def epoch_batches(
    ds: Any,
    params: np.ndarray,
    order: torch.Tensor,
    *,
    batch_size: int,
    recipe: Any,
    device: torch.device,
    path: str,
    workers: int = 0,
    device_images: torch.Tensor | None = None,
    labels: torch.Tensor,
) -> Iterator[Batch]:
    """Yield (normalised views, labels, sample indices) on ``device`` for one epoch."""
    from sortkd_cache.augment import normalize, replay

    mean, std = ds.info.mean, ds.info.std
    batches = _batches_of(order, batch_size)

    def render_u8(images: Any, p: Any) -> torch.Tensor:
        return replay(images, p, recipe)

    if path == "device":
        images = device_images if device_images is not None else ds.tensor.to(device)
        params_dev = torch.from_numpy(np.ascontiguousarray(params)).to(device)
        for idx in batches:
            idx_dev = idx.to(device)
            x = normalize(render_u8(images[idx_dev], params_dev[idx_dev]), mean, std)
            yield x, labels[idx_dev], idx_dev
        return
    loader = torch.utils.data.DataLoader(
        _ReplayBatches(ds, params, batches, render_u8),
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if workers > 0 else None,
    )
    for u8, idx in loader:
        idx_dev = idx.to(device, non_blocking=True)
        x = normalize(u8.to(device, non_blocking=True), mean, std)
        yield x, labels[idx_dev], idx_dev


class ViewPrefetcher:
    """Reads a view's soft logits in a background thread; ``get(view)`` returns them on device."""

    def __init__(self, read: Callable[[int], np.ndarray], device: torch.device) -> None:
        self._read, self._device = read, device
        self._cache: dict[int, torch.Tensor] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._errors: dict[int, BaseException] = {}

    def _load(self, view: int) -> None:
        try:
            t = torch.from_numpy(self._read(view))
            if self._device.type == "cuda":
                t = t.pin_memory()
            self._cache[view] = t
        except BaseException as exc:  # re-raised in get()
            self._errors[view] = exc

    def prefetch(self, view: int) -> None:
        if view in self._cache or view in self._threads:
            return
        th = threading.Thread(target=self._load, args=(view,), daemon=True)
        self._threads[view] = th
        th.start()

    def get(self, view: int) -> torch.Tensor:
        self.prefetch(view)
        thread = self._threads.pop(view, None)
        if thread is not None:
            thread.join()
        if view in self._errors:
            raise self._errors.pop(view)
        return self._cache.pop(view).to(self._device, non_blocking=True)
