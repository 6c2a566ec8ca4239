"""`sortkd-cache dump`: run the teacher once over V augmented views per sample.

Work is cut into (block, view) units, a block being the store's chunk of samples. Each unit:
sample the view's augmentation parameters from the counter-based generator (seed, i, v),
replay them on the block's images, run the teacher in micro-batches that start at the block
boundary (so results do not depend on resume points or ranks), check the logits are finite,
and hand the chunk to a writer thread so compression and I/O overlap the next forward pass.

The loop is software-pipelined: unit k+1 is launched (on CUDA: queued, with its logits copied
back asynchronously into pinned memory) before unit k's results are checked and handed to the
writers, so the accelerator never waits for the host's bookkeeping.

A unit is marked done only after its logits are written (the progress marker is the unit's
last write, and every file is written to ``*.partial`` then renamed), so ``--resume`` redoes at
most the units that were in flight and ends bit-identical to an uninterrupted run, provided the
micro-batch size is the same (it is recorded in the raw logits' attributes and checked).
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sortkd_cache._version import __version__
from sortkd_cache.errors import ConfigError, NonFiniteLogitsError, StoreError, StoreExistsError
from sortkd_cache.pipelines._common import build_teacher, progress_bar, resolve_device, utc_now
from sortkd_cache.pipelines.distributed import all_sum, barrier
from sortkd_cache.store import (
    CacheStore,
    DatasetRecord,
    StoreMeta,
    TeacherRecord,
    choose_chunk_samples,
    create_store,
    open_store,
    parse_location,
    writer_lock,
)

__all__ = [
    "DumpConfig",
    "DumpResult",
    "clean_partial_files",
    "dump",
    "finalize",
    "open_or_create",
    "run_units",
    "teacher_logits",
]

IDENTITY_FIELDS = ("num_samples", "num_views", "num_classes", "chunk_samples", "dtype", "seed")
_ATTRS_KEY = "sortkd_cache"
_LOCK_PREFIX = ".sortkd-lock"
_MAX_PENDING_WRITES = 3


@dataclass(frozen=True)
class DumpConfig:
    dataset: str
    teacher: str
    out: str
    views: int = 4
    seed: int = 0
    augment: str | None = None
    teacher_ckpt: str | None = None
    teacher_init: str = "checkpoint"
    split: str = "train"
    data_root: str | None = None
    download: bool = False
    dtype: str = "float16"
    batch_size: int = 256
    chunk_samples: int | None = None
    device: str = "auto"
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    rank: int = 0
    world_size: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DumpConfig:
        return cls(**d)


@dataclass
class DumpResult:
    store: str
    seconds: float
    forward_seconds: float
    units_written: int
    units_skipped: int
    samples_per_second: float
    teacher_accuracy: list[float] = field(default_factory=list)
    setup_seconds: float = 0.0  # data, teacher and store set-up before the first unit

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _validate(cfg: DumpConfig) -> None:
    if cfg.views < 1:
        raise ConfigError(f"--views must be >= 1, got {cfg.views}")
    if cfg.dtype not in ("float16", "float32"):
        raise ConfigError(f"--dtype must be float16 or float32, got '{cfg.dtype}'")
    if cfg.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {cfg.batch_size}")
    if cfg.chunk_samples is not None and cfg.chunk_samples < 1:
        raise ConfigError(f"--chunk-samples must be >= 1, got {cfg.chunk_samples}")
    if cfg.overwrite and cfg.resume:
        raise ConfigError("--resume and --overwrite exclude each other")
    if cfg.world_size < 1 or not 0 <= cfg.rank < cfg.world_size:
        raise ConfigError(f"bad rank {cfg.rank} for world size {cfg.world_size}")


def clean_partial_files(store_dir: str | os.PathLike[str]) -> int:
    """Delete half-written ``*.partial`` files left by a killed writer; returns how many."""
    count = 0
    for path in Path(store_dir).rglob("*.partial"):
        path.unlink(missing_ok=True)
        count += 1
    return count


@torch.inference_mode()
def teacher_logits(model: torch.nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Teacher logits (float32) over ``x`` in micro-batches starting at index 0."""
    outs = [model(x[i : i + batch_size]).float() for i in range(0, x.shape[0], batch_size)]
    return torch.cat(outs) if outs else x.new_zeros((0, 0))


def _check_finite(logits: np.ndarray, start: int, view: int) -> None:
    bad = ~np.isfinite(logits)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        value = logits[row][bad[row]][0]
        raise NonFiniteLogitsError(
            f"teacher produced {value} logits for sample {start + row}, view {view}; "
            "dump stopped (chunks already written are kept)"
        )


def _meta_for(cfg: DumpConfig, ds: Any, recipe: Any, teacher_sha: str | None) -> StoreMeta:
    info = ds.info
    itemsize = np.dtype(cfg.dtype).itemsize
    chunk = cfg.chunk_samples or choose_chunk_samples(len(ds), info.num_classes, itemsize)
    return StoreMeta(
        num_samples=len(ds),
        num_views=cfg.views,
        num_classes=info.num_classes,
        chunk_samples=min(chunk, len(ds)),
        dtype=cfg.dtype,
        seed=cfg.seed,
        dataset=DatasetRecord(
            name=info.name,
            spec=info.spec,
            split=info.split,
            fingerprint=ds.fingerprint(),
            num_samples=len(ds),
            num_classes=info.num_classes,
            channels=info.channels,
            image_size=info.image_size,
            mean=tuple(info.mean),
            std=tuple(info.std),
        ),
        teacher=TeacherRecord(
            arch=cfg.teacher,
            sha256=teacher_sha,
            init=cfg.teacher_init,
            checkpoint=Path(cfg.teacher_ckpt).name if cfg.teacher_ckpt else None,
        ),
        augment=recipe.to_dict(),
        tool_version=__version__,
        created=utc_now(),
    )


def _check_resumable(where: str, old: StoreMeta, meta: StoreMeta) -> None:
    for name in IDENTITY_FIELDS:
        if getattr(old, name) != getattr(meta, name):
            raise StoreError(
                f"cannot resume '{where}': {name} is {getattr(old, name)!r} in the store "
                f"but {getattr(meta, name)!r} now"
            )
    checks = {
        "dataset fingerprint": (old.dataset.fingerprint, meta.dataset.fingerprint),
        "teacher": (old.teacher.arch, meta.teacher.arch),
        "teacher sha256": (old.teacher.sha256, meta.teacher.sha256),
        "augment": (old.augment, meta.augment),
    }
    for name, (a, b) in checks.items():
        if a != b:
            raise StoreError(f"cannot resume '{where}': {name} differs ({a!r} vs {b!r})")


def _occupied(path: Path) -> bool:
    """Whether a directory holds anything but a writer lock and half-written files."""
    return path.is_dir() and any(_occupied_entry(c) for c in path.iterdir())


def _interrupted_creation(path: Path, cfg: DumpConfig, meta: StoreMeta) -> bool:
    """On --resume: whether the store at ``path`` was killed before any unit could be marked
    done. A dump creates in order: the root group, its attributes, labels, aug_params,
    logits/raw, progress/raw; progress markers exist only after all of them. Raises when
    ``path`` holds something else than a store of this dump (or a newer schema)."""
    try:
        doc = json.loads((path / "zarr.json").read_text())
        record = doc["attributes"][_ATTRS_KEY]
    except (OSError, ValueError, KeyError, TypeError):
        record = None
    if not isinstance(record, dict):
        if any(c.name != "zarr.json" for c in path.iterdir() if _occupied_entry(c)):
            raise StoreError(f"cannot resume '{cfg.out}': it is not a sortkd-cache store")
        (path / "zarr.json").unlink(missing_ok=True)  # killed before its attributes
        return True
    _check_resumable(cfg.out, StoreMeta.from_dict(record), meta)  # newer schema: refused here
    needed = ("labels", "aug_params", "logits/raw", "progress/raw")
    return not all((path / p / "zarr.json").is_file() for p in needed)


def _occupied_entry(c: Path) -> bool:
    return not (c.name.startswith(_LOCK_PREFIX) or c.name.endswith(".partial"))


def _check_out_free(cfg: DumpConfig) -> None:
    """Fail fast, before loading data and teacher, when --out is taken (no --overwrite or
    --resume)."""
    path = Path(parse_location(cfg.out).path)
    taken = path.exists() and (not path.is_dir() or _occupied(path))
    if taken and not (cfg.overwrite or cfg.resume):
        raise StoreExistsError(f"'{cfg.out}' already exists; pass --overwrite to replace it")


def open_or_create(cfg: DumpConfig, meta: StoreMeta, labels: np.ndarray) -> CacheStore:
    """The store to dump into: resumed, or created (replacing only with --overwrite).

    Half-written ``*.partial`` files of a killed writer are deleted once the directory is
    known to be this dump's store; call it holding the store's writer lock."""
    path = Path(parse_location(cfg.out).path)
    overwrite = cfg.overwrite
    if cfg.resume and _occupied(path):
        interrupted = _interrupted_creation(path, cfg, meta)  # raises unless it is ours
        clean_partial_files(path)
        if not interrupted:
            store = open_store(cfg.out, mode="r+")
            _check_resumable(cfg.out, store.meta, meta)
            if not store.meta.complete:
                _check_batch_size(store, cfg)
            return store
        overwrite = (path / "zarr.json").is_file()  # our own half-created store: replace it
    elif not _occupied(path):
        clean_partial_files(path)  # nothing but a lock and half-written files: start afresh
    store = create_store(cfg.out, meta, labels, overwrite=overwrite)
    store.create_kind("raw", cfg.dtype, overwrite=True)
    store.set_kind_attrs("raw", {"kind": "raw", "complete": False, "batch_size": cfg.batch_size})
    return store


def _check_batch_size(store: CacheStore, cfg: DumpConfig) -> None:
    recorded = store.kind_attrs("raw").get("batch_size")
    if recorded is not None and recorded != cfg.batch_size:
        raise ConfigError(
            f"cannot resume '{cfg.out}' with --batch-size {cfg.batch_size}: it was started with "
            f"--batch-size {recorded} (logits depend on it); pass --batch-size {recorded}"
        )


def _block_images(ds: Any, start: int, stop: int, device: torch.device) -> Any:
    images = ds.images(np.arange(start, stop, dtype=np.int64))
    if not isinstance(images, torch.Tensor):
        return [im.to(device) for im in images]
    return images.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else images


def _launch(
    model: torch.nn.Module, images: Any, params: np.ndarray, recipe: Any, info: Any, bs: int
) -> tuple[torch.Tensor, Any]:
    """Queue replay + normalize + forward of one unit. On CUDA the float32 logits are copied
    back into pinned memory asynchronously: wait on the returned event before reading them."""
    from sortkd_cache.augment import normalize, replay

    out = teacher_logits(model, normalize(replay(images, params, recipe), info.mean, info.std), bs)
    if out.device.type != "cuda":
        return out, None
    host = torch.empty(out.shape, dtype=out.dtype, pin_memory=True)
    host.copy_(out, non_blocking=True)
    event = torch.cuda.Event()  # type: ignore[no-untyped-call]
    event.record()
    return host, event


def run_units(
    store: CacheStore,
    ds: Any,
    recipe: Any,
    model: torch.nn.Module,
    cfg: DumpConfig,
    device: torch.device,
    blocks: list[int],
) -> tuple[int, int, int, float]:
    """Dump every missing (block, view) unit of ``blocks``.

    Returns (units written, units skipped, sample-views written, forward seconds).
    """
    from sortkd_cache.augment import sample_params

    progress = store.progress("raw")
    todo = [(b, v) for b in blocks for v in range(store.num_views) if progress[b, v] < 0]
    skipped = len(blocks) * store.num_views - len(todo)
    total = sum(store.block_bounds(b)[1] - store.block_bounds(b)[0] for b, _ in todo)
    pending: list[Future[None]] = []
    forward = 0.0
    bar = progress_bar(total, "dump", "img", cfg.progress)
    # Leaving the pool waits for every submitted write, also when an error propagates:
    # chunks finished before a failure are kept.
    with bar, ThreadPoolExecutor(max_workers=2, thread_name_prefix="sortkd-write") as pool:

        def finish(unit: tuple[int, int, np.ndarray, torch.Tensor, Any]) -> None:
            nonlocal forward, pending
            block, view, params, logits, event = unit
            start, stop = store.block_bounds(block)
            t0 = time.perf_counter()
            if event is not None:
                event.synchronize()
            forward += time.perf_counter() - t0
            out = logits.numpy()
            _check_finite(out, start, view)
            with np.errstate(over="ignore"):  # overflow to inf is reported just below
                values = out.astype(cfg.dtype)
            _check_finite(values, start, view)
            correct = int((values.argmax(axis=1) == ds.labels[start:stop]).sum())
            pending = [f for f in pending if not _done(f)]
            while len(pending) >= _MAX_PENDING_WRITES:
                pending.pop(0).result()
            write = store.write_chunk
            pending.append(
                pool.submit(write, "raw", block, view, values, params=params, count=correct)
            )
            bar.update(stop - start)

        current_block, images, sizes = -1, None, np.zeros((0, 2), dtype=np.int64)
        inflight = None
        for block, view in todo:
            start, stop = store.block_bounds(block)
            if block != current_block:
                images = _block_images(ds, start, stop, device)
                sizes = ds.image_sizes()[start:stop]
                current_block = block
            idx = np.arange(start, stop, dtype=np.int64)
            params = sample_params(recipe, cfg.seed, idx, view, sizes)
            t0 = time.perf_counter()
            logits, event = _launch(model, images, params, recipe, ds.info, cfg.batch_size)
            forward += time.perf_counter() - t0
            if inflight is not None:  # unit k+1 is queued before unit k is checked and written
                finish(inflight)
            inflight = (block, view, params, logits, event)
        if inflight is not None:
            finish(inflight)
        for f in pending:
            f.result()
    return len(todo), skipped, total, forward


def _done(f: Future[None]) -> bool:
    if f.done():
        f.result()
        return True
    return False


def finalize(store: CacheStore, seconds: float) -> list[float]:
    """Mark the raw logits complete once every unit is written; returns per-view accuracy.

    Returns [] while units are missing. A store already complete is left as it is.
    """
    if store.meta.complete:
        return list(store.meta.teacher_accuracy)
    progress = store.progress("raw")
    if (progress < 0).any():
        return []
    acc = [float(a) for a in progress.sum(axis=0) / store.num_samples]
    attrs = store.kind_attrs("raw")
    attrs.update({"kind": "raw", "complete": True})
    store.set_kind_attrs("raw", attrs)
    store.write_meta(
        store.meta.replace(
            complete=True, teacher_accuracy=tuple(acc), dump_seconds=round(seconds, 3)
        )
    )
    return acc


def dump(cfg: DumpConfig) -> DumpResult:
    """Run the dump stage; see the module docstring."""
    from sortkd_cache.augment import get_recipe
    from sortkd_cache.datasets import load_dataset

    _validate(cfg)
    t_start = time.perf_counter()
    loc = parse_location(cfg.out)
    if loc.kind != "dir":
        raise StoreError(
            f"dump writes a local directory store, not '{cfg.out}'; "
            "publish it afterwards with `sortkd-cache copy`"
        )
    if cfg.rank == 0:
        _check_out_free(cfg)
    ds = load_dataset(cfg.dataset, cfg.split, data_root=cfg.data_root, download=cfg.download)
    recipe = get_recipe(cfg.augment or ds.info.default_augment)
    device = resolve_device(cfg.device)
    model, sha = build_teacher(
        cfg.teacher,
        ds.info.num_classes,
        ds.info.channels,
        ckpt=cfg.teacher_ckpt,
        init=cfg.teacher_init,
        seed=cfg.seed,
        device=device,
    )
    meta = _meta_for(cfg, ds, recipe, sha)
    Path(loc.path).mkdir(parents=True, exist_ok=True)
    lock: AbstractContextManager[None] = (
        writer_lock(loc.path, "sortkd-cache dump") if cfg.rank == 0 else nullcontext(None)
    )
    with lock:
        if cfg.rank == 0:
            store = open_or_create(cfg, meta, ds.labels)
        barrier()
        if cfg.rank != 0:
            store = open_store(cfg.out, mode="r+")
            _check_resumable(cfg.out, store.meta, meta)
        setup = time.perf_counter() - t_start
        blocks = [b for b in range(store.num_blocks) if b % cfg.world_size == cfg.rank]
        written, skipped, rows, forward = run_units(store, ds, recipe, model, cfg, device, blocks)
        # every rank's counts, summed; also the barrier before rank 0 finalises
        written, skipped, rows = (int(x) for x in all_sum([written, skipped, rows]))
        seconds = time.perf_counter() - t_start
        acc = finalize(store, seconds) if cfg.rank == 0 else []
    return DumpResult(
        store=cfg.out,
        seconds=seconds,
        forward_seconds=forward,
        units_written=written,
        units_skipped=skipped,
        samples_per_second=rows / max(seconds, 1e-9),
        teacher_accuracy=acc or list(store.meta.teacher_accuracy),
        setup_seconds=setup,
    )
