"""`sortkd-cache dump`: run the teacher once over V augmented views per sample.

Work is cut into (block, view) units, a block being the store's chunk of samples. Each unit:
sample the view's augmentation parameters from the counter-based generator (seed, i, v),
replay them on the block's images, run the teacher in micro-batches that start at the block
boundary (so results do not depend on resume points or ranks), check the logits are finite,
and hand the chunk to a writer thread so compression and I/O overlap the next forward pass.
The teacher's inputs come micro-batch by micro-batch, every view of a block at once (each
image is decoded once for all its views), from :class:`~sortkd_cache.pipelines.dump._decode.
ViewInputs`: for image folders its worker threads decode, replay and normalise the next
micro-batches while the teacher runs on the current one.

The loop is software-pipelined: block k+1's units are launched (on CUDA: queued, with their
logits copied back asynchronously into pinned memory) before block k's results are checked
and handed to the writers, so the accelerator never waits for the host's bookkeeping.

A unit is marked done only after its logits are written (the progress marker is the unit's
last write, and every file is written to ``*.partial`` then renamed), so ``--resume`` redoes at
most the units that were in flight and ends bit-identical to an uninterrupted run, provided the
micro-batch size is the same (it is recorded in the raw logits' attributes and checked).
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from sortkd_cache.augment import CURRENT_VERSION, get_recipe, output_size
from sortkd_cache.datasets import load_dataset
from sortkd_cache.errors import AugmentError, StoreError
from sortkd_cache.models import teacher_logits
from sortkd_cache.outputs import check_disjoint
from sortkd_cache.pipelines.common.distributed import all_sum, barrier
from sortkd_cache.pipelines.common.helpers import (
    build_teacher,
    check_precision,
    dataset_folder,
    forward_context,
    prepare_for_precision,
    progress_bar,
    resolve_device,
)
from sortkd_cache.pipelines.common.preprocess import (
    PreprocessOptions,
    check_teacher_input,
    check_view_shapes,
    recorded_preprocess,
    resolve_preprocess,
    teacher_recipe,
)
from sortkd_cache.pipelines.dump._config import DumpConfig
from sortkd_cache.pipelines.dump._decode import (
    ViewInputs,
    check_decoder,
    default_workers,
    plan_blocks,
)
from sortkd_cache.pipelines.dump._store import (
    check_out_free,
    check_resumable,
    chunk_samples_for,
    meta_for,
    open_or_create,
    resumed_recipe_version,
)
from sortkd_cache.pipelines.dump._units import Unit, UnitWriter
from sortkd_cache.store import (
    CacheStore,
    open_store,
    parse_location,
    writer_lock,
)

__all__ = ["DumpResult", "dump", "finalize", "run_units"]


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


def _forward(
    model: torch.nn.Module, x: torch.Tensor, cfg: DumpConfig, channels_last: bool
) -> torch.Tensor:
    """The teacher's logits (float32, on ``x``'s device) of one micro-batch at
    ``cfg.precision``; on CUDA only queued."""
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with forward_context(cfg.precision, x.device):
        return teacher_logits(model, x, cfg.batch_size)


def _to_host(parts: list[torch.Tensor]) -> tuple[torch.Tensor, Any]:
    """A unit's logits from its micro-batches. On CUDA they are copied back into pinned memory
    asynchronously: wait on the returned event before reading them."""
    out = parts[0] if len(parts) == 1 else torch.cat(parts)
    if out.device.type != "cuda":
        return out, None
    host = torch.empty(out.shape, dtype=out.dtype, pin_memory=True)
    host.copy_(out, non_blocking=True)
    event = torch.cuda.Event()  # type: ignore[no-untyped-call]
    event.record()
    return host, event


def _view_size(recipe: Any, ds: Any) -> tuple[int, int] | None:
    """The (h, w) of every view, or None when views vary in size."""
    try:
        return output_size(recipe, ds.info.image_size)
    except AugmentError:
        return None


def _view_inputs(
    ds: Any, recipe: Any, cfg: DumpConfig, device: torch.device, prep: Any = None
) -> ViewInputs:
    workers = cfg.workers or default_workers()
    return ViewInputs(ds, recipe, workers, device, cfg.decoder, cfg.batch_size, prep)


def run_units(
    store: CacheStore,
    ds: Any,
    recipe: Any,
    model: torch.nn.Module,
    cfg: DumpConfig,
    device: torch.device,
    blocks: list[int],
    channels_last: bool = False,
    source: ViewInputs | None = None,
) -> tuple[int, int, int, float]:
    """Dump every missing (block, view) unit of ``blocks``, taking the teacher's inputs from
    ``source`` (one started during set-up; default: a new one).

    Returns (units written, units skipped, sample-views written, forward seconds).
    """
    progress = store.progress("raw")
    todo = [(b, v) for b in blocks for v in range(store.num_views) if progress[b, v] < 0]
    skipped = len(blocks) * store.num_views - len(todo)
    total = sum(store.block_bounds(b)[1] - store.block_bounds(b)[0] for b, _ in todo)
    plan = plan_blocks(ds, recipe, cfg.seed, todo, store.chunk_samples)
    bar = progress_bar(total, "dump", "img", cfg.progress)
    inputs = source or _view_inputs(ds, recipe, cfg, device, recorded_preprocess(store.meta))
    with bar, UnitWriter(store, ds.labels, cfg.dtype, bar) as writer, inputs as inputs_of:
        forward = _forward_blocks(inputs_of.batches(plan), model, cfg, channels_last, writer)
    return len(todo), skipped, total, forward + writer.waited


def _forward_blocks(
    batches: Any, model: torch.nn.Module, cfg: DumpConfig, channels_last: bool, writer: UnitWriter
) -> float:
    """Run the teacher over every view of each block's micro-batches; a block's last
    micro-batch launches its units, which the writer finishes once the next block is queued.
    Returns the seconds spent launching forward passes."""
    forward = 0.0
    inflight: list[Unit] = []
    parts: list[list[torch.Tensor]] = []
    for bp, offset, inputs in batches:
        if offset == 0:
            parts = [[] for _ in bp.views]
        t0 = time.perf_counter()
        for j, x in enumerate(inputs):
            parts[j].append(_forward(model, x, cfg, channels_last))
        forward += time.perf_counter() - t0
        del inputs
        if offset + cfg.batch_size < bp.stop - bp.start:
            continue  # the block's last micro-batch launches its units
        launched = [
            (bp.block, view, bp.params[j], *_to_host(parts[j])) for j, view in enumerate(bp.views)
        ]
        parts = []
        for unit in inflight:  # block k+1 is queued before block k is written
            writer.finish(unit)
        inflight = launched
    for unit in inflight:
        writer.finish(unit)
    return forward


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
    attrs.update({"kind": "raw", "complete": True, **store.layout.finish_attrs(store, "raw")})
    store.set_kind_attrs("raw", attrs)
    store.write_meta(
        store.meta.replace(
            complete=True, teacher_accuracy=tuple(acc), dump_seconds=round(seconds, 3)
        )
    )
    return acc


def dump(cfg: DumpConfig) -> DumpResult:
    """Run the dump stage; see the module docstring."""
    device = resolve_device(cfg.device)
    check_precision(cfg.precision, device)
    check_decoder(cfg.decoder, device)
    t_start = time.perf_counter()
    loc = parse_location(cfg.out)
    if loc.kind != "dir":
        raise StoreError(
            f"dump writes a local directory store, not '{cfg.out}'; "
            "publish it afterwards with `sortkd-cache copy`"
        )
    check_disjoint(
        cfg.out,
        [
            ("--teacher-ckpt", cfg.teacher_ckpt),
            ("--dataset folder", dataset_folder(cfg.dataset)),
            ("--data-root", cfg.data_root),
        ],
    )
    if cfg.rank == 0:
        check_out_free(cfg)
    ds = load_dataset(cfg.dataset, cfg.split, data_root=cfg.data_root, download=cfg.download)
    check_decoder(cfg.decoder, device, ds)
    version = resumed_recipe_version(cfg) if cfg.resume else CURRENT_VERSION
    recipe = get_recipe(cfg.augment or ds.info.default_augment, version)
    prep = resolve_preprocess(
        cfg.teacher, None, cfg.teacher_init, ds.info, PreprocessOptions.of(cfg)
    )
    recipe = teacher_recipe(recipe, prep)
    check_view_shapes(recipe, prep, ds)
    with _view_inputs(ds, recipe, cfg, device, prep) as source:
        if not cfg.resume:  # every unit of this rank is to do: start on them now
            chunk = chunk_samples_for(cfg, ds)
            blocks = range(cfg.rank, -(-len(ds) // chunk), cfg.world_size)
            todo = [(b, v) for b in blocks for v in range(cfg.views)]
            source.start(plan_blocks(ds, recipe, cfg.seed, todo, chunk))
        return _dump_with(cfg, ds, recipe, device, source, t_start, loc.path)


def _dump_with(
    cfg: DumpConfig,
    ds: Any,
    recipe: Any,
    device: torch.device,
    source: ViewInputs,
    t_start: float,
    path: str,
) -> DumpResult:
    """The rest of :func:`dump`: teacher, store, units, finalisation."""
    model, sha = build_teacher(
        cfg.teacher,
        ds.info.num_classes,
        ds.info.channels,
        ckpt=cfg.teacher_ckpt,
        init=cfg.teacher_init,
        seed=cfg.seed,
        device=device,
    )
    check_teacher_input(model, source.preprocess, _view_size(recipe, ds), cfg)
    channels_last = prepare_for_precision(model, cfg.precision, device)
    meta = meta_for(cfg, ds, recipe, sha, source.preprocess)
    Path(path).mkdir(parents=True, exist_ok=True)
    lock: AbstractContextManager[None] = (
        writer_lock(path, "sortkd-cache dump") if cfg.rank == 0 else nullcontext(None)
    )
    with lock:
        if cfg.rank == 0:
            store = open_or_create(cfg, meta, ds.labels)
        barrier()
        if cfg.rank != 0:
            store = open_store(cfg.out, mode="r+")
            check_resumable(cfg.out, store.meta, meta)
        setup = time.perf_counter() - t_start
        blocks = [b for b in range(store.num_blocks) if b % cfg.world_size == cfg.rank]
        written, skipped, rows, forward = run_units(
            store, ds, recipe, model, cfg, device, blocks, channels_last, source
        )
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
