"""The test split, prepared once per run for the per-epoch evaluation.

Every epoch evaluates the student on the test split's deterministic views
(:func:`~sortkd_cache.augment.eval_view`, no augmentation). Those views never change, so they
are made once: decoded (folder datasets: by a pool of ``workers`` decoder threads), put through
``eval_view`` and kept as one uint8 tensor ``[N, C, h, w]`` on the training device when it
fits (GPU: under a quarter of its free memory; CPU: under a quarter of the available RAM).
Evaluating is then a loop of normalise + forward over slices of it, with no host round trip.

A split whose views do not fit is decoded again each epoch, ``batch_size`` images at a time,
by the same decoder pool. Both give the same top-1 as evaluating batch by batch from the
dataset (the views are computed per image).
"""

from __future__ import annotations

import os
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from sortkd_cache.augment import eval_view, normalize

__all__ = ["EvalViews", "fits_in_memory"]

_MEMORY_SHARE = 0.25


def fits_in_memory(nbytes: int, device: torch.device) -> bool:
    """Whether ``nbytes`` take under a quarter of the free memory of ``device``."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return nbytes < _MEMORY_SHARE * free
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume it does not fit
        return False
    return nbytes < _MEMORY_SHARE * avail


def _images(ds: Any, idx: np.ndarray, pool: Executor | None) -> Any:
    if getattr(ds, "tensor", None) is not None or pool is None:
        return ds.images(idx)
    return ds.images(idx, pool)


class EvalViews:
    """The test split's eval views and labels; :meth:`top1` evaluates a model on them."""

    def __init__(
        self, ds: Any, recipe: Any, device: torch.device, batch_size: int, workers: int = 1
    ) -> None:
        self.ds, self.recipe, self.device, self.batch_size = ds, recipe, device, batch_size
        self.labels = torch.tensor(np.array(ds.labels, dtype=np.int64), device=device)
        folder = getattr(ds, "tensor", None) is None
        self._pool = ThreadPoolExecutor(max(1, workers), "sortkd-eval") if folder else None
        self.views: torch.Tensor | None = None
        n = len(ds)
        if n == 0:
            return
        first = eval_view(self._to_device(_images(ds, np.arange(1), self._pool)), recipe)
        per_image = first[0].numel() * first.element_size()
        if not fits_in_memory(per_image * n, device):
            return
        views = torch.empty((n, *first.shape[1:]), dtype=torch.uint8, device=device)
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            images = self._to_device(_images(ds, np.arange(start, stop), self._pool), device)
            views[start:stop] = eval_view(images, recipe)
        self.views = views
        self.close()  # nothing is decoded again

    def _to_device(self, images: Any, device: torch.device | None = None) -> Any:
        dev = device or self.device
        if isinstance(images, torch.Tensor):
            return images.to(dev)
        return [im.to(dev) for im in images]

    @property
    def prepared(self) -> bool:
        """Whether the views are held (else they are decoded again at each evaluation)."""
        return self.views is not None

    def batches(self) -> Any:
        """Yield (uint8 views, labels) on the device, ``batch_size`` samples at a time."""
        n = len(self.ds)
        for start in range(0, n, self.batch_size):
            stop = min(n, start + self.batch_size)
            if self.views is not None:
                yield self.views[start:stop], self.labels[start:stop]
                continue
            images = self._to_device(_images(self.ds, np.arange(start, stop), self._pool))
            yield eval_view(images, self.recipe), self.labels[start:stop]

    @torch.no_grad()
    def top1(self, model: torch.nn.Module) -> float:
        """Top-1 (%) of ``model`` on the test split (restores train mode afterwards)."""
        mean, std = self.ds.info.mean, self.ds.info.std
        was_training = model.training
        model.eval()
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        for u8, y in self.batches():  # counted on the device: one host read per evaluation
            correct += (model(normalize(u8, mean, std)).argmax(dim=1) == y).sum()
        model.train(was_training)
        return 100.0 * int(correct) / max(1, len(self.ds))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
