"""`sortkd-cache sort`: the sorting mechanism (or swap) over every stored row, with Dask.

One Dask task per (block, view) chunk: read the raw chunk and the block's labels, apply the
kernel (one pass that also yields each row's label rank and first maximum, the statistics),
write the chunk of ``logits/<method>`` (same dtype, same chunking, checksummed), and return the
chunk's statistics.

Progress is the chunks themselves: a chunk is written whole or not at all (an atomic rename on
a directory, one PUT on an object store), so at the start of a run the chunks already present
are the ones done. They are only read for their statistics, so an interrupted run resumes and
ends equal to an uninterrupted one. The per-chunk counts of ``progress/<method>`` (rows
changed) are written once, when every chunk is in place, just before the kind is marked
complete.

Tasks open the stores by location, so they run on threads (default) or on the workers of a
dask.distributed cluster (``--scheduler``) that can reach the store's path or URL.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sortkd_cache.errors import (
    StoreExistsError,
    StoreNotFoundError,
)
from sortkd_cache.outputs import check_disjoint, check_replaceable
from sortkd_cache.pipelines.common.helpers import clean_partial_files, progress_bar, utc_now
from sortkd_cache.pipelines.sort._config import SortConfig
from sortkd_cache.pipelines.sort._dask import connect, run_tasks
from sortkd_cache.pipelines.sort._stats import ChunkStats, aggregate_stats, chunk_stats
from sortkd_cache.sorting import get_method
from sortkd_cache.store import (
    CacheStore,
    Location,
    create_store,
    open_store,
    parse_location,
    writer_lock,
)

__all__ = ["SortConfig", "SortResult", "sort_store", "written_chunks"]


@dataclass
class SortResult:
    store: str
    method: str
    skipped: bool
    chunks_written: int
    chunks_total: int
    seconds: float
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_OPENED: dict[tuple[str, str, str], CacheStore] = {}
_OPENED_LOCK = threading.Lock()
_OPENED_MAX = 8


def _cached_store(location: str, mode: str, options_key: str) -> CacheStore:
    """A store opened once per sort run and process (``options_key`` names the run).

    The driver seeds it with the stores it opened (:func:`_share_store`), so tasks on the
    threaded scheduler reuse them; dask.distributed workers open their own once per run.
    """
    key = (location, mode, options_key)
    with _OPENED_LOCK:
        store = _OPENED.get(key)
        if store is None:
            opts = json.loads(options_key)["storage_options"] or None
            store = open_store(location, mode, storage_options=opts)  # type: ignore[arg-type]
            _share_store(location, mode, options_key, store)
    return store


def _share_store(location: str, mode: str, options_key: str, store: CacheStore) -> None:
    _OPENED[(location, mode, options_key)] = store
    while len(_OPENED) > _OPENED_MAX:  # workers outlive runs: keep the latest few
        _OPENED.pop(next(iter(_OPENED)))


def _forget_stores() -> None:
    with _OPENED_LOCK:
        _OPENED.clear()


def _sort_chunk(
    src: str,
    dst: str,
    options_key: str,
    method: str,
    block: int,
    view: int,
    done: bool,
) -> ChunkStats:
    """Sort one (block, view) chunk in the store's layout (sparse: exact on every kept entry,
    tails carried over) and, unless ``done``, write it; returns its statistics."""
    source = _cached_store(src, "r", options_key)
    start, stop = source.block_bounds(block)
    raw = source.kind_array("raw").read_block(block, view)
    labels = source.labels[start:stop]
    out, rank, top = source.layout.sort_rows(method, raw, labels)
    stats = chunk_stats(rank, top, labels, source.num_classes, view)
    if not done:
        target = _cached_store(dst, "r+", options_key)
        target.layout.write_sorted(target, method, block, view, out, stats.changed)
    return stats


def written_chunks(store: CacheStore, kind: str) -> np.ndarray:
    """bool [blocks, V]: the chunks of ``kind`` an earlier, interrupted sort wrote (dense: the
    chunks present, one listing; sparse: the chunk's progress marker, written after it)."""
    return store.layout.sorted_chunks(store, kind)


def _clean_partial_writes(dst: Location, method: str) -> None:
    """Delete the half-written files of a killed sort (a local directory, under its lock)."""
    if dst.kind != "dir":
        return
    for sub in (f"logits/{method}", f"progress/{method}"):
        clean_partial_files(Path(dst.path) / sub)


def _record_progress(target: CacheStore, method: str, parts: list[ChunkStats]) -> None:
    """``progress/<method>``: rows changed per chunk (dense: in one write at the end)."""
    counts = np.array([p.changed for p in parts], dtype=np.int64)
    target.layout.record_sorted(target, method, counts)


def _copy_params(source: CacheStore, target: CacheStore) -> None:
    params, dst = source.raw_array("aug_params"), target.raw_array("aug_params")
    for block in range(source.num_blocks):
        start, stop = source.block_bounds(block)
        dst[start:stop] = params[start:stop]


def _target_store(cfg: SortConfig, source: CacheStore) -> CacheStore:
    """``--out``: a new store carrying labels, parameters and provenance (not raw logits)."""
    if cfg.out is None:
        return open_store(cfg.store, "r+", storage_options=cfg.storage_options)
    if not cfg.overwrite:
        try:
            existing = open_store(cfg.out, "r+", storage_options=cfg.storage_options)
        except StoreNotFoundError:
            existing = None
        if existing is not None:
            if existing.meta.dataset != source.meta.dataset or (
                existing.meta.teacher != source.meta.teacher
            ):
                raise StoreExistsError(
                    f"--out '{cfg.out}' holds a store of other data or teacher; pass --overwrite"
                )
            if not existing.kind_complete(cfg.method):  # an interrupted run: params again
                _copy_params(source, existing)
            return existing
    target = create_store(cfg.out, source.meta, source.labels, overwrite=cfg.overwrite)
    _copy_params(source, target)
    return target


def _run_chunks(
    cfg: SortConfig, source: CacheStore, target: CacheStore, done: np.ndarray, client: Any
) -> list[ChunkStats]:
    """One task per (block, view) chunk; those in ``done`` are only read for statistics."""
    # a fresh key per run: dask.distributed workers outlive a run, and must not reuse what
    # they opened for an earlier one (a store may be re-created at the same path)
    key = json.dumps(
        {"run": uuid.uuid4().hex, "storage_options": cfg.storage_options or {}},
        sort_keys=True,
    )
    _forget_stores()
    with _OPENED_LOCK:  # tasks on threads use the stores opened here
        _share_store(cfg.store, "r", key, source)
        _share_store(target.url, "r+", key, target)
    tasks = [
        (_sort_chunk, cfg.store, target.url, key, cfg.method, b, v, bool(done[b, v]))
        for b in range(source.num_blocks)
        for v in range(source.num_views)
    ]
    bar = progress_bar(len(tasks), f"sort ({cfg.method})", "chunk", cfg.progress)
    try:
        parts: list[ChunkStats] = run_tasks(
            tasks, client=client, num_workers=cfg.num_workers, on_done=lambda: bar.update(1)
        )
    finally:
        bar.close()
        _forget_stores()
    return parts


def _finish(
    cfg: SortConfig, source: CacheStore, target: CacheStore, parts: list[ChunkStats], t0: float
) -> dict[str, Any]:
    """Every chunk is in place: counts, statistics, then the kind marked complete (last)."""
    _record_progress(target, cfg.method, parts)
    stats = aggregate_stats(parts, source.num_views, source.num_samples, source.num_classes)
    attrs: dict[str, Any] = {
        "kind": cfg.method,
        "method": cfg.method,
        "source": "raw",
        "complete": True,
        "created": utc_now(),
        "seconds": round(time.perf_counter() - t0, 3),
        "stats": stats,
    }
    target.set_kind_attrs(cfg.method, attrs)
    return stats


def check_sort_output(cfg: SortConfig) -> None:
    """Before anything is created: the options, and an --out that is not the source (nor
    inside it, nor containing it) and that --overwrite may replace (a store)."""
    if cfg.out is None:
        return
    check_disjoint(cfg.out, [("STORE", cfg.store)])
    if cfg.overwrite:
        check_replaceable(cfg.out, "store", storage_options=cfg.storage_options)


def sort_store(cfg: SortConfig) -> SortResult:
    """Run the sort stage; see the module docstring."""
    get_method(cfg.method)
    check_sort_output(cfg)
    t0 = time.perf_counter()
    source = open_store(cfg.store, "r", storage_options=cfg.storage_options)
    source.kind_array("raw")  # checks the raw kind is complete
    dtype = source.meta.dtype
    source.labels  # noqa: B018 - validates label range before any work
    dst_loc = parse_location(cfg.out or cfg.store)
    lock = (
        writer_lock(dst_loc.path, f"sortkd-cache sort --method {cfg.method}")
        if (dst_loc.kind == "dir")
        else nullcontext()
    )
    with connect(cfg.scheduler) as client, lock:
        target = _target_store(cfg, source)
        if target.kind_complete(cfg.method) and not cfg.overwrite:
            return SortResult(
                store=target.url,
                method=cfg.method,
                skipped=True,
                chunks_written=0,
                chunks_total=source.num_blocks * source.num_views,
                seconds=0.0,
                stats=target.kind_attrs(cfg.method).get("stats", {}),
            )
        target.create_kind(cfg.method, dtype, overwrite=cfg.overwrite)
        _clean_partial_writes(dst_loc, cfg.method)
        done = written_chunks(target, cfg.method)
        parts = _run_chunks(cfg, source, target, done, client)
        stats = _finish(cfg, source, target, parts, t0)
    return SortResult(
        store=target.url,
        method=cfg.method,
        skipped=False,
        chunks_written=int((~done).sum()),
        chunks_total=done.size,
        seconds=time.perf_counter() - t0,
        stats=stats,
    )
