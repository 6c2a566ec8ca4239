"""`sortkd-cache sort`: the sorting mechanism (or swap) over every stored row, with Dask.

One Dask task per (block, view) chunk: read the raw chunk and the block's labels, apply the
kernel, write the chunk of ``logits/<method>`` (same dtype, same chunking, checksummed) and its
progress marker, and return the chunk's statistics. Chunks already marked done are only read
for their statistics, so an interrupted run resumes and ends equal to an uninterrupted one.
Tasks open the stores by location, so they run on threads (default) or on the workers of a
dask.distributed cluster (``--scheduler``) that can reach the store's path or URL.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections import Counter
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sortkd_cache.errors import (
    ConfigError,
    LogitsKindError,
    StoreExistsError,
    StoreNotFoundError,
)
from sortkd_cache.pipelines._common import progress_bar, utc_now
from sortkd_cache.pipelines._dask import connect, run_tasks
from sortkd_cache.store import CacheStore, create_store, open_store, parse_location, writer_lock

__all__ = ["SortConfig", "SortResult", "chunk_stats", "sort_store"]

TOP_CONFUSIONS = 20


@dataclass(frozen=True)
class SortConfig:
    store: str
    method: str = "sort"
    out: str | None = None
    scheduler: str | None = None
    overwrite: bool = False
    topk: int | None = None
    progress: bool = True
    num_workers: int | None = None
    storage_options: dict[str, Any] | None = None


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


@functools.lru_cache(maxsize=8)
def _cached_store(location: str, mode: str, options_key: str) -> CacheStore:
    """A store opened once per sort run and process (``options_key`` names the run)."""
    import json

    opts = json.loads(options_key)["storage_options"] or None
    return open_store(location, mode, storage_options=opts)  # type: ignore[arg-type]


def chunk_stats(raw: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Rows that sort changes, the label's rank histogram and (label, top) confusions."""
    from sortkd_cache.sorting import label_rank

    ranks = label_rank(raw, labels)
    changed = ranks > 0
    top = raw[changed].argmax(axis=1)  # rows the label tops (rank 0) need no argmax
    c = raw.shape[1]
    pair_ids, pair_counts = np.unique(labels[changed] * c + top, return_counts=True)
    hist = np.bincount(ranks)
    nz = np.flatnonzero(hist)
    return {
        "changed": int(changed.sum()),
        "ranks": Counter(dict(zip(nz.tolist(), hist[nz].tolist(), strict=True))),
        "pairs": Counter(
            {(int(p // c), int(p % c)): int(n) for p, n in zip(pair_ids, pair_counts, strict=True)}
        ),
    }


def _sort_chunk(
    src: str,
    dst: str,
    options_key: str,
    method: str,
    block: int,
    view: int,
    done: bool,
    topk: int | None,
) -> dict[str, Any]:
    from sortkd_cache.sorting import get_method

    source = _cached_store(src, "r", options_key)
    if source.is_sparse:  # exact on every kept entry, tails carried over
        from sortkd_cache.pipelines._sort_sparse import sort_sparse_chunk

        target = None if done else _cached_store(dst, "r+", options_key)
        stats = sort_sparse_chunk(source, target, method, block, view)
        stats["view"] = view
        return stats
    start, stop = source.block_bounds(block)
    raw = source.logits("raw").read_block(block, view)
    labels = source.labels[start:stop]
    stats = chunk_stats(raw, labels)
    stats["view"] = view
    if not done:
        target = _cached_store(dst, "r+", options_key)
        out = get_method(method)(raw, labels)
        if topk:
            from sortkd_cache.topk import write_topk_chunk

            write_topk_chunk(target, method, block, view, out, topk)
        target.write_chunk(method, block, view, out, count=stats["changed"])
    return stats


def _aggregate(parts: list[dict[str, Any]], num_views: int, n: int) -> dict[str, Any]:
    changed = [0] * num_views
    ranks: Counter[int] = Counter()
    pairs: Counter[tuple[int, int]] = Counter()
    for p in parts:
        changed[p["view"]] += p["changed"]
        ranks.update(p["ranks"])
        pairs.update(p["pairs"])
    return {
        "changed_rows": changed,
        "changed_fraction": [c / n for c in changed],
        "rank_histogram": {str(k): int(v) for k, v in sorted(ranks.items())},
        "top_confusions": [
            {"label": int(a), "top": int(b), "count": int(c)}
            for (a, b), c in pairs.most_common(TOP_CONFUSIONS)
        ],
    }


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


def sort_store(cfg: SortConfig) -> SortResult:
    """Run the sort stage; see the module docstring."""
    import json

    from sortkd_cache.sorting import get_method

    get_method(cfg.method)
    if cfg.topk is not None and cfg.topk < 1:
        raise ConfigError(f"--topk must be >= 1, got {cfg.topk}")
    t0 = time.perf_counter()
    source = open_store(cfg.store, "r", storage_options=cfg.storage_options)
    if source.is_sparse and cfg.topk is not None:
        raise LogitsKindError(
            f"--topk writes a top-K copy of dense logits, but '{cfg.store}' is already sparse "
            f"(top-{source.sparse_spec.k}); sort it without --topk"
        )
    if source.is_sparse:  # either read checks the raw kind is complete
        source.sparse_logits("raw")
    else:
        source.logits("raw")
    dtype = source.meta.dtype
    source.labels  # noqa: B018 - validates label range before any work
    if cfg.topk is not None and cfg.topk >= source.num_classes:
        raise ConfigError(f"--topk {cfg.topk} must be below the class count {source.num_classes}")
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
        if cfg.topk:
            from sortkd_cache.topk import create_topk_arrays

            create_topk_arrays(target, cfg.method, cfg.topk, overwrite=cfg.overwrite)
        progress = target.progress(cfg.method)
        # a fresh key per run: dask.distributed workers outlive a run, and must not reuse what
        # they opened for an earlier one (a store may be re-created at the same path)
        key = json.dumps(
            {"run": uuid.uuid4().hex, "storage_options": cfg.storage_options or {}},
            sort_keys=True,
        )
        _cached_store.cache_clear()
        tasks = [
            (
                _sort_chunk,
                cfg.store,
                target.url,
                key,
                cfg.method,
                b,
                v,
                bool(progress[b, v] >= 0),
                cfg.topk,
            )
            for b in range(source.num_blocks)
            for v in range(source.num_views)
        ]
        todo = int((progress < 0).sum())
        bar = progress_bar(len(tasks), f"sort ({cfg.method})", "chunk", cfg.progress)
        parts = run_tasks(
            tasks,
            client=client,
            num_workers=cfg.num_workers,
            on_done=lambda: bar.update(1),
        )
        bar.close()
        _cached_store.cache_clear()
        stats = _aggregate(parts, source.num_views, source.num_samples)
        attrs: dict[str, Any] = {
            "kind": cfg.method,
            "method": cfg.method,
            "source": "raw",
            "complete": True,
            "created": utc_now(),
            "seconds": round(time.perf_counter() - t0, 3),
            "stats": stats,
        }
        if cfg.topk:
            from sortkd_cache.topk import topk_fidelity

            attrs["topk"] = topk_fidelity(target, cfg.method, cfg.topk)
        target.set_kind_attrs(cfg.method, attrs)
    return SortResult(
        store=target.url,
        method=cfg.method,
        skipped=False,
        chunks_written=todo,
        chunks_total=len(tasks),
        seconds=time.perf_counter() - t0,
        stats=stats,
    )
