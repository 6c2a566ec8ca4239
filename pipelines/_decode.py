"""A dump's block images, decoded ahead of use by a pool of workers.

Folder datasets (imagefolder) decode each block's files in a thread pool of ``workers``
decoders while the teacher runs on the previous block; the next block is queued as soon as
the current one is handed out, so decoding and the forward pass overlap. Every image is
decoded once per block, for all V views, with the same function as the serial path: the
pixels (and the logits) do not depend on the number of workers. In-memory datasets are
sliced directly (no pool).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

import numpy as np
import torch

__all__ = ["BlockImages", "block_images", "default_workers"]


def default_workers() -> int:
    """Decoders when ``--workers`` is not given: the CPUs this process may use, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def _to_device(images: Any, device: torch.device) -> Any:
    if not isinstance(images, torch.Tensor):
        return [im.to(device) for im in images]
    return images.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else images


def block_images(ds: Any, start: int, stop: int, device: torch.device) -> Any:
    """Samples ``start:stop`` of ``ds`` on ``device``, decoded serially (no pool)."""
    return _to_device(ds.images(np.arange(start, stop, dtype=np.int64)), device)


class BlockImages:
    """Iterate the images of ``bounds`` (a list of ``(start, stop)``), one block ahead.

    Use as a context manager; leaving it stops the pool (queued decodes are cancelled).
    """

    def __init__(
        self, ds: Any, bounds: Sequence[tuple[int, int]], workers: int, device: torch.device
    ) -> None:
        self._ds, self._bounds, self._device = ds, list(bounds), device
        folder = getattr(ds, "tensor", None) is None
        self._decoders = ThreadPoolExecutor(workers, "sortkd-decode") if folder else None
        # one coordinator thread gathers a block's images from the decoders
        self._ahead = ThreadPoolExecutor(1, "sortkd-block") if folder else None

    def __enter__(self) -> BlockImages:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for pool in (self._ahead, self._decoders):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def __iter__(self) -> Iterator[Any]:
        ahead, bounds = self._ahead, self._bounds
        if ahead is None:
            for start, stop in bounds:
                yield block_images(self._ds, start, stop, self._device)
            return

        def submit(k: int) -> Future[Any] | None:
            if k >= len(bounds):
                return None
            idx = np.arange(*bounds[k], dtype=np.int64)
            return ahead.submit(self._ds.images, idx, self._decoders)

        nxt = submit(0)
        for k in range(len(bounds)):
            current, nxt = nxt, submit(k + 1)
            if current is not None:
                yield _to_device(current.result(), self._device)
