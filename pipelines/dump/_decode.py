"""A dump's teacher inputs, made ahead of use by a pool of workers.

:meth:`ViewInputs.batches` walks a dump's blocks micro-batch by micro-batch (micro-batches of
``batch_size`` samples starting at each block's first sample, as the forward pass cuts them)
and yields, for each, the normalised views of every view to dump of that block, ready for the
teacher.

Folder datasets (imagefolder) on the CPU: ``workers`` threads each take pieces of
:data:`PIECE` samples, decode them (PIL), replay every view's recorded parameters on them
(:func:`~sortkd_cache.augment.replay`, the function ``train`` replays with), apply the
teacher's own preprocessing (:class:`~sortkd_cache.models.TeacherPreprocess`: its input size
and interpolation, its mean and std; by default the dataset's normalisation), and hand back
float32 [V, piece, C, H, W]; the main thread
only concatenates the pieces and runs the teacher. The next micro-batches are prepared while
the teacher runs on the current one: at most :data:`MAX_AHEAD` micro-batches are in flight
(fewer when they would hold more than :data:`AHEAD_BYTES`), so the decoded images held at
once are a few pieces per worker, not a block. Each image is decoded once for all its views.

Each worker thread runs torch's kernels single-threaded (its own OpenMP team of one, as a
``DataLoader`` worker process sets ``torch.set_num_threads(1)``); the main thread keeps its
threads for the forward pass. Every view is computed per image by the same function whatever
the number of workers, so the pixels (and the logits) do not depend on it.

On CUDA the workers decode (PIL) or read the files' bytes (``decoder="nvjpeg"``, decoded in
one batched call per micro-batch on the GPU by
:func:`~sortkd_cache.datasets.imagefolder.decode_jpegs`), and the views are replayed and
normalised on the device, as ``train`` replays there. In-memory datasets are sliced directly
and replayed on the device (no pool).
"""

from __future__ import annotations

import os
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sortkd_cache.augment import replay, sample_params
from sortkd_cache.choices import DECODERS
from sortkd_cache.datasets import imagefolder
from sortkd_cache.errors import AugmentError, ConfigError
from sortkd_cache.models import TeacherPreprocess

if TYPE_CHECKING:
    from sortkd_cache.models import TeacherPreprocess

__all__ = [
    "DECODERS",
    "BlockPlan",
    "ViewInputs",
    "block_images",
    "check_decoder",
    "default_workers",
    "piece_views",
    "plan_blocks",
]

PIECE = 32  # samples per worker task
MAX_AHEAD = 4  # micro-batches in flight (the one in use included)
AHEAD_BYTES = 512 << 20  # ... while they hold at most this much (one ahead always)


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
    if decoder not in DECODERS:
        raise ConfigError(f"unknown --decoder '{decoder}'; use {', '.join(DECODERS)}")
    if decoder == "nvjpeg" and device.type != "cuda":
        raise ConfigError(f"--decoder nvjpeg decodes on a CUDA device, not on '{device}'")
    if decoder == "nvjpeg" and ds is not None and getattr(ds, "tensor", None) is not None:
        raise ConfigError(
            f"--decoder nvjpeg applies to image folders, not to '{ds.info.spec}' (in memory)"
        )


def block_images(ds: Any, start: int, stop: int, device: torch.device) -> Any:
    """Samples ``start:stop`` of ``ds`` on ``device``, decoded serially (no pool)."""
    return _to_device(ds.images(np.arange(start, stop, dtype=np.int64)), device)


@dataclass(frozen=True, eq=False)
class BlockPlan:
    """One block of a dump: samples ``start:stop``, the ``views`` to dump, and their recorded
    parameters ``params`` int32 [len(views), stop - start, 5]."""

    block: int
    start: int
    stop: int
    views: tuple[int, ...]
    params: np.ndarray


def plan_blocks(
    ds: Any, recipe: Any, seed: int, todo: list[tuple[int, int]], chunk_samples: int
) -> list[BlockPlan]:
    """The blocks of ``todo`` (block, view) units in order, blocks being ``chunk_samples``
    samples of ``ds``, each with its views' parameters (each block's images are decoded once,
    for all its views)."""
    views_of: dict[int, list[int]] = {}
    for b, v in todo:
        views_of.setdefault(b, []).append(v)
    plan = []
    for block, views in views_of.items():
        start = block * chunk_samples
        stop = min(len(ds), start + chunk_samples)
        sizes = ds.image_sizes()[start:stop]
        idx = np.arange(start, stop, dtype=np.int64)
        params = np.stack([sample_params(recipe, seed, idx, v, sizes) for v in views])
        plan.append(BlockPlan(block, start, stop, tuple(views), params))
    return plan


def _one_thread() -> None:
    """Pool initializer: torch kernels called from this thread use one OpenMP thread."""
    from threadpoolctl import threadpool_limits

    torch.get_num_threads()  # torch sets this thread's OpenMP team up first (once a thread)
    with warnings.catch_warnings():  # e.g. about two OpenMP runtimes: a speed matter only
        warnings.simplefilter("ignore")
        threadpool_limits(1, user_api="openmp")  # this thread's setting only


def piece_views(
    ds: Any, start: int, params: np.ndarray, recipe: Any, prep: TeacherPreprocess
) -> torch.Tensor:
    """Samples ``start:start + params.shape[1]`` of a folder ``ds`` decoded, every view's
    ``params`` [V, k, 5] replayed and preprocessed for the teacher (``prep``: resized to its
    input size, normalised): float32 [V, k, C, H, W]."""
    images = ds.images(np.arange(start, start + params.shape[1], dtype=np.int64))
    views = torch.stack([replay(images, p, recipe) for p in params])
    del images  # the decoded images go before the float copy is made
    return prep.apply(views)


def _concat(pieces: list[torch.Tensor], recipe: Any) -> torch.Tensor:
    shapes = {tuple(p.shape[2:]) for p in pieces}
    if len(shapes) > 1:  # the message `replay` gives for one list of images
        raise AugmentError(
            f"recipe {recipe.name!r} gives views of different sizes {sorted(shapes)}; "
            "give an explicit output size (e.g. imagenet:224)"
        )
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)


class ViewInputs:
    """The teacher's inputs of a dump, micro-batch by micro-batch (see the module doc).

    Use as a context manager; leaving it stops the pool (queued work is cancelled).
    """

    def __init__(
        self,
        ds: Any,
        recipe: Any,
        workers: int,
        device: torch.device,
        decoder: str = "pil",
        batch_size: int = 256,
        preprocess: TeacherPreprocess | None = None,
    ) -> None:
        info = ds.info
        self._prep = preprocess or TeacherPreprocess.for_dataset(info.mean, info.std)
        self._ds, self._recipe, self._device = ds, recipe, device
        self._nvjpeg, self._batch = decoder == "nvjpeg", batch_size
        folder = getattr(ds, "tensor", None) is None
        self._started: _Prefetch | None = None
        self._pool = (
            ThreadPoolExecutor(workers, "sortkd-decode", initializer=_one_thread)
            if folder
            else None
        )

    @property
    def preprocess(self) -> TeacherPreprocess:
        """What the teacher's inputs are made with."""
        return self._prep

    def __enter__(self) -> ViewInputs:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _micro(self, plan: Sequence[BlockPlan]) -> Iterator[tuple[BlockPlan, int, int]]:
        for bp in plan:
            n = bp.stop - bp.start
            for a in range(0, n, self._batch):
                yield bp, a, min(n, a + self._batch)

    def start(self, plan: Sequence[BlockPlan]) -> None:
        """Begin preparing the first micro-batches of ``plan`` now (a dump starts them before
        its set-up: fingerprint, teacher, store); :meth:`batches` of the same plan goes on
        from there, of another plan discards them."""
        if self._pool is not None:
            self._started = _Prefetch(self, self._pool, list(plan))

    def batches(
        self, plan: Sequence[BlockPlan]
    ) -> Iterator[tuple[BlockPlan, int, list[torch.Tensor]]]:
        """``(block, offset in the block, [inputs of each view of block.views])`` for every
        micro-batch of ``plan`` in order; inputs are float32 [b, C, h, w] on the device."""
        pool = self._pool
        if pool is None:
            yield from self._in_memory(plan)
            return
        run, self._started = self._started, None
        if run is None or not run.same_plan(plan):
            if run is not None:
                run.cancel()
            run = _Prefetch(self, pool, list(plan))
        while run.pending():
            bp, a, inputs, size = run.pop()
            yield bp, a, inputs
            run.release(size)  # once the caller is done with it

    def _bytes(self, bp: BlockPlan, a: int, b: int) -> int:
        """What a micro-batch holds at most: decoded images (device path) or float views."""
        if self._device.type == "cuda":
            sizes = self._ds.image_sizes()[bp.start + a : bp.start + b]
            return int((sizes[:, 0] * sizes[:, 1]).sum()) * 3
        out = self._prep.input_size or self._recipe.out_size
        if out is None:
            sizes = self._ds.image_sizes()[bp.start + a : bp.start + b]
            pixels = int((sizes[:, 0] * sizes[:, 1]).max())
        else:
            pixels = int(out[0]) * int(out[1])
        return len(bp.views) * (b - a) * 3 * pixels * 4

    def _submit(self, pool: ThreadPoolExecutor, bp: BlockPlan, a: int, b: int) -> list[Future[Any]]:
        ds = self._ds
        out: list[Future[Any]] = []
        for s in range(a, b, PIECE):
            e = min(b, s + PIECE)
            idx = np.arange(bp.start + s, bp.start + e, dtype=np.int64)
            if self._nvjpeg:
                out.append(pool.submit(ds.encoded, idx))
            elif self._device.type == "cuda":
                out.append(pool.submit(ds.images, idx))
            else:
                p = bp.params[:, s:e]
                args = (ds, bp.start + s, p, self._recipe, self._prep)
                out.append(pool.submit(piece_views, *args))
        return out

    def _finish(self, bp: BlockPlan, a: int, b: int, pieces: list[Any]) -> list[torch.Tensor]:
        if self._device.type != "cuda":
            return list(_concat(pieces, self._recipe).unbind(0))
        parts = [x for piece in pieces for x in piece]
        if self._nvjpeg:
            paths = self._ds.paths(np.arange(bp.start + a, bp.start + b, dtype=np.int64))
            images = imagefolder.decode_jpegs(parts, paths, self._device)
        else:
            images = _to_device(parts, self._device)
        return self._render(images, bp.params[:, a:b])

    def _render(self, images: Any, params: np.ndarray) -> list[torch.Tensor]:
        return [self._prep.apply(replay(images, p, self._recipe)) for p in params]

    def _in_memory(
        self, plan: Sequence[BlockPlan]
    ) -> Iterator[tuple[BlockPlan, int, list[torch.Tensor]]]:
        images: Any = None
        for bp, a, b in self._micro(plan):
            if a == 0:
                images = None  # the previous block's images go first
                images = block_images(self._ds, bp.start, bp.stop, self._device)
            yield bp, a, self._render(images[a:b], bp.params[:, a:b])


class _Prefetch:
    """The micro-batches of one plan in flight in ``pool`` (bounds: see the module doc)."""

    def __init__(self, owner: ViewInputs, pool: ThreadPoolExecutor, plan: list[BlockPlan]):
        self._owner, self._pool, self.plan = owner, pool, plan
        self._todo = owner._micro(plan)
        self._next = next(self._todo, None)
        self._queue: deque[tuple[BlockPlan, int, int, list[Future[Any]], int]] = deque()
        self._held = 0
        self._top_up()

    def same_plan(self, plan: Sequence[BlockPlan]) -> bool:
        return len(plan) == len(self.plan) and all(
            (a.block, a.start, a.stop, a.views) == (b.block, b.start, b.stop, b.views)
            and np.array_equal(a.params, b.params)
            for a, b in zip(plan, self.plan, strict=True)
        )

    def _top_up(self) -> None:
        """Queue micro-batches: one ahead always, more within the bounds."""
        while self._next is not None:
            size = self._owner._bytes(*self._next)
            full = len(self._queue) >= MAX_AHEAD or self._held + size > AHEAD_BYTES
            if self._queue and full:
                return
            futures = self._owner._submit(self._pool, *self._next)
            self._queue.append((*self._next, futures, size))
            self._held += size
            self._next = next(self._todo, None)

    def pending(self) -> bool:
        return bool(self._queue) or self._next is not None

    def pop(self) -> tuple[BlockPlan, int, list[torch.Tensor], int]:
        self._top_up()
        bp, a, b, futures, size = self._queue[0]
        inputs = self._owner._finish(bp, a, b, [f.result() for f in futures])
        self._queue.popleft()
        return bp, a, inputs, size

    def release(self, size: int) -> None:
        self._held -= size

    def cancel(self) -> None:
        for *_, futures, _size in self._queue:
            for f in futures:
                f.cancel()
        self._queue.clear()
