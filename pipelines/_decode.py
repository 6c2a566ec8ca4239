"""A dump's block images, decoded ahead of use by a pool of workers.

Folder datasets (imagefolder) decode each block's files in a thread pool of ``workers``
decoders while the teacher runs on the previous block; the next block is queued as soon as
the current one is handed out, so decoding and the forward pass overlap. Every image is
decoded once per block, for all V views, with the same function as the serial path: the
pixels (and the logits) do not depend on the number of workers. In-memory datasets are
sliced directly (no pool).

``decoder="nvjpeg"`` (CUDA only): the workers read the files' bytes and the main thread
decodes each block's JPEGs on the GPU in one batched call
(:func:`~sortkd_cache.datasets.imagefolder.decode_jpegs`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

import numpy as np
import torch

__all__ = [
    "DECODERS",
    "BlockImages",
    "block_images",
    "check_decoder",
    "default_workers",
    "replay_parallel",
]

DECODERS = ("pil", "nvjpeg")
AHEAD_BYTES = 2 << 30


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


def check_decoder(decoder: str, device: torch.device, ds: Any | None = None) -> None:
    """Refuse an unknown decoder, nvjpeg without CUDA, or nvjpeg for in-memory data."""
    from sortkd_cache.errors import ConfigError

    if decoder not in DECODERS:
        raise ConfigError(f"unknown --decoder '{decoder}'; use {', '.join(DECODERS)}")
    if decoder == "nvjpeg" and device.type != "cuda":
        raise ConfigError(f"--decoder nvjpeg decodes on a CUDA device, not on '{device}'")
    if decoder == "nvjpeg" and ds is not None and getattr(ds, "tensor", None) is not None:
        raise ConfigError(
            f"--decoder nvjpeg applies to image folders, not to '{ds.info.spec}' (in memory)"
        )


def replay_parallel(images: Any, params: np.ndarray, recipe: Any, pool: Any | None) -> Any:
    """``replay(images, params, recipe)``, a list of CPU images cut into one slice per worker
    of ``pool`` (every view is computed per image, so the slices put together are the serial
    result bit for bit). Tensors, device images and ``pool=None`` replay in this thread."""
    from sortkd_cache.augment import replay

    on_cpu = isinstance(images, list) and all(im.device.type == "cpu" for im in images)
    workers = getattr(pool, "_max_workers", 1)
    if pool is None or not on_cpu or workers < 2 or len(images) < 2 * workers:
        return replay(images, params, recipe)
    step = -(-len(images) // workers)
    parts = [(images[k : k + step], params[k : k + step]) for k in range(0, len(images), step)]
    done = list(pool.map(lambda part: replay(part[0], part[1], recipe), parts))
    return torch.cat(done)


def block_images(ds: Any, start: int, stop: int, device: torch.device) -> Any:
    """Samples ``start:stop`` of ``ds`` on ``device``, decoded serially (no pool)."""
    return _to_device(ds.images(np.arange(start, stop, dtype=np.int64)), device)


class BlockImages:
    """Iterate the images of ``bounds`` (a list of ``(start, stop)``), one block ahead.

    Use as a context manager; leaving it stops the pool (queued decodes are cancelled).
    """

    def __init__(
        self,
        ds: Any,
        bounds: Sequence[tuple[int, int]],
        workers: int,
        device: torch.device,
        decoder: str = "pil",
    ) -> None:
        self._ds, self._bounds, self._device = ds, list(bounds), device
        self._nvjpeg = decoder == "nvjpeg"
        folder = getattr(ds, "tensor", None) is None
        self._decoders = ThreadPoolExecutor(workers, "sortkd-decode") if folder else None
        # one coordinator thread gathers a block's images from the decoders
        self._ahead = ThreadPoolExecutor(1, "sortkd-block") if folder else None

    def __enter__(self) -> BlockImages:
        return self

    @property
    def pool(self) -> ThreadPoolExecutor | None:
        """The decoder threads (idle between blocks: the replay of a view can use them)."""
        return self._decoders

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
            if self._nvjpeg:
                return ahead.submit(self._ds.encoded, idx, self._decoders)
            return ahead.submit(self._ds.images, idx, self._decoders)

        sizes = self._ds.image_sizes()
        decoded = [int((sizes[a:b, 0] * sizes[a:b, 1]).sum()) * 3 for a, b in bounds]
        nxt = submit(0)
        for k in range(len(bounds)):
            current, nxt = nxt, None
            ahead_ok = k + 1 < len(bounds) and decoded[k] + decoded[k + 1] <= AHEAD_BYTES
            if ahead_ok:  # the next block decodes while this one is used
                nxt = submit(k + 1)
            if current is None:
                current = submit(k)
            if current is None:
                continue
            if self._nvjpeg:
                from sortkd_cache.datasets.imagefolder import decode_jpegs

                paths = self._ds.paths(np.arange(*bounds[k], dtype=np.int64))
                yield decode_jpegs(current.result(), paths, self._device)
            else:
                yield _to_device(current.result(), self._device)
            del current  # this block's images are released before the next one is decoded
