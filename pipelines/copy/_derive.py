"""``copy SRC DST --topk K --views 0,3 --dtype float16``: a re-sliced store, no teacher rerun.

The derived store is built in a private directory (beside a local DST, else in the temp
directory), one (block, view) chunk at a time (memory per chunk): the chosen views of every
complete logits kind, narrowed to ``dtype``, truncated to the top K (recording each kind's
fidelity on the dense rows it sees). It is then published with :func:`copy_store` (verified
first; atomic for a directory or zip, root key last on s3/gs) and the private copy removed.
Its provenance gains a ``derivation`` step naming the source, what was kept and when.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sortkd_cache.errors import ConfigError, StoreExistsError
from sortkd_cache.outputs import check_disjoint, check_replaceable
from sortkd_cache.pipelines.common.helpers import progress_bar, utc_now
from sortkd_cache.pipelines.copy._config import DeriveConfig
from sortkd_cache.sparse import (
    QuantSpec,
    SampledSpec,
    SparseSpec,
    quant_spec_for,
    sampled_spec_for,
    sparse_spec_for,
)
from sortkd_cache.store import (
    SCHEMA_VERSION,
    CacheStore,
    CopyResult,
    copy_store,
    create_store,
    open_store,
    parse_location,
    quick_check,
)

__all__ = ["DeriveConfig", "derive_store", "parse_views"]


def parse_views(text: str, num_views: int) -> list[int]:
    try:
        views = [int(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--views must be view indices like 0,2,3, got {text!r}") from None
    bad = [v for v in views if not 0 <= v < num_views]
    if bad or not views:
        raise ConfigError(f"--views {text!r}: the source has views 0..{num_views - 1}")
    if len(set(views)) != len(views):
        raise ConfigError(f"--views {text!r} names a view twice")
    return views


def _check(cfg: DeriveConfig, src: CacheStore) -> tuple[list[int], str, Any]:
    meta = src.meta
    src.layout.check_copy(src.url, cfg.derive, meta.dtype)
    if cfg.topk is None and cfg.topk_temperatures is not None:
        raise ConfigError("--topk-temperatures needs --topk")
    views = parse_views(cfg.views, meta.num_views) if cfg.views else list(range(meta.num_views))
    dtype = cfg.dtype or meta.dtype
    if dtype not in ("float16", "float32"):
        raise ConfigError(f"--dtype must be float16 or float32, got {dtype!r}")
    if np.dtype(dtype).itemsize > np.dtype(meta.dtype).itemsize:
        raise ConfigError(f"--dtype {dtype} would widen the store's {meta.dtype} logits")
    src.layout.check_copy(src.url, cfg.derive, dtype)
    spec: SparseSpec | SampledSpec | QuantSpec | None = None
    if cfg.topk is not None:
        spec = sparse_spec_for(cfg.topk, meta.num_classes, dtype, cfg.topk_temperatures)
    if cfg.sample is not None:
        t0, c = cfg.proposal_temperature, meta.num_classes
        spec = sampled_spec_for(cfg.sample, c, dtype, t0, meta.seed, cfg.sample_head)
    if cfg.quantize is not None:
        spec = quant_spec_for(cfg.quantize, meta.num_classes, dtype)
    if not meta.complete:
        raise ConfigError(f"'{src.url}' is not a complete store (finish its dump first)")
    return views, dtype, spec


def _new_meta(src: CacheStore, views: list[int], dtype: str, spec: Any, cfg: DeriveConfig) -> Any:
    meta = src.meta
    step = {
        "source": src.url,
        "source_store_id": meta.store_id,
        "views": views,
        "dtype": dtype,
        "topk": cfg.topk,
        **({"sample": cfg.sample} if cfg.sample is not None else {}),
        **({"sample_head": cfg.sample_head} if cfg.sample_head else {}),
        **({"quantize": cfg.quantize} if cfg.quantize is not None else {}),
        "created": utc_now(),
    }
    acc = tuple(meta.teacher_accuracy[v] for v in views) if meta.teacher_accuracy else ()
    new = meta.replace(
        num_views=len(views),
        dtype=dtype,
        teacher_accuracy=acc,
        derivation=(*meta.derivation, step),
        schema=SCHEMA_VERSION,  # every store written now carries metadata checksums
    )
    return new.with_sparse(spec) if spec is not None else new


def _kind_attrs(src: CacheStore, kind: str, views: list[int]) -> dict[str, Any]:
    attrs = {k: v for k, v in src.kind_attrs(kind).items() if k not in ("topk", "fidelity")}
    if views != list(range(src.num_views)):
        attrs.pop("stats", None)  # per-view statistics of views that may be gone
    attrs["complete"] = False
    return attrs


@dataclass(frozen=True)
class _KindCopy:
    """What each chunk of one kind's derivation reads and writes (shared by the workers)."""

    src: CacheStore
    dst: CacheStore
    data: Any  # the source kind's dense or sparse logits
    kind: str
    spec: Any  # the spec of --topk, --sample or --quantize, or None
    labels: np.ndarray
    fidelity: Any  # a sparse source's fidelity sums [B, V, T+2], carried per view; or None

    def chunk(self, block: int, new_v: int, old_v: int) -> int:
        """Read, re-slice and write one chunk (in a worker thread); returns its rows.

        A derived kind whose raw rows change form (narrowed to another dtype, or truncated
        to the top K) is its method applied to the new raw rows, not its own rows re-sliced:
        narrowing can tie values, and a tie at the K-th value is broken by class id, so the
        two can differ; ``verify`` checks every derived row against its raw row."""
        start, stop = self.src.block_bounds(block)
        labels = self.labels[start:stop]
        remade = self.kind != "raw" and (
            self.dst.meta.dtype != self.src.meta.dtype or self.spec is not None
        )
        layout, dtype = self.src.layout, self.dst.meta.dtype
        raw = (
            layout.cast(self.src.kind_array("raw").read_block(block, old_v), dtype)
            if remade
            else None
        )
        if raw is not None:
            chunk = layout.sort_rows(self.kind, raw, labels)[0]
        else:
            chunk = layout.cast(self.data.read_block(block, old_v), dtype)
        fid = None
        if self.spec is not None:  # --topk/--sample/--quantize: made from the dense chunk
            at = (start, old_v)  # what sampled rows are keyed by
            chunk, fid = self.dst.layout.encode(np.asarray(chunk), labels, at=at)
            if raw is not None:  # the fidelity of the dense rows; the rows of the sparse raw
                sparse_raw, _ = self.dst.layout.encode(np.asarray(raw), labels, at=at)
                chunk = self.dst.layout.sort_rows(self.kind, sparse_raw, labels)[0]
        elif self.fidelity is not None:
            fid = np.asarray(self.fidelity[block, old_v])
        self.dst.write_chunk(self.kind, block, new_v, chunk, fidelity=fid)
        return stop - start


def _fill(src: CacheStore, dst: CacheStore, views: list[int], spec: Any, progress: bool) -> None:
    for new_v, old_v in enumerate(views):
        for block in range(src.num_blocks):
            start, stop = src.block_bounds(block)
            dst.raw_array("aug_params")[start:stop, new_v] = src.params(old_v, start, stop)
    kinds, labels = src.kinds(), src.labels  # labels read once, not once per chunk
    total = len(kinds) * len(views) * src.num_samples
    units = [(b, nv, ov) for nv, ov in enumerate(views) for b in range(src.num_blocks)]
    with progress_bar(total, "copy", "row", progress) as bar:
        for kind in kinds:
            fidelity = src.layout.fidelity_sums(src, kind)
            carried = spec is not None or fidelity is not None
            attrs = _kind_attrs(src, kind, views)
            dst.create_kind(kind, dst.meta.dtype, attrs=attrs, fidelity=carried)
            data = src.kind_array(kind)
            job = _KindCopy(src, dst, data, kind, spec, labels, fidelity)
            for rows in _bounded_map(job.chunk, units, _workers()):
                bar.update(rows)
            attrs = dst.kind_attrs(kind)
            attrs["complete"] = True
            if carried:
                attrs |= dst.layout.finish_attrs(dst, kind)
            dst.set_kind_attrs(kind, attrs)


def _workers() -> int:
    """Chunk workers of a derivation: the cores (numpy, codecs and zarr release the GIL)."""
    return max(1, min(8, os.cpu_count() or 1))


def _bounded_map(
    fn: Callable[..., int], units: list[tuple[int, int, int]], workers: int
) -> Iterator[int]:
    """``fn(*unit)`` for every unit on ``workers`` threads, at most ``2 * workers`` in flight
    (so memory stays a few chunks), results in order. Each unit writes its own chunk and its
    own fidelity row, so the store does not depend on the order or the number of workers."""
    with ThreadPoolExecutor(workers, "sortkd-derive") as pool:
        inflight: deque[Future[int]] = deque()
        for unit in units:
            if len(inflight) >= 2 * workers:
                yield inflight.popleft().result()
            inflight.append(pool.submit(fn, *unit))
        while inflight:
            yield inflight.popleft().result()


def _workdir(dst: str) -> Path:
    loc = parse_location(dst)
    if loc.kind == "dir":
        parent = Path(loc.path).resolve().parent
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{Path(loc.path).name}.derive-", dir=parent))
    return Path(tempfile.mkdtemp(prefix="sortkd-derive-"))


def derive_store(
    src: str,
    dst: str,
    cfg: DeriveConfig,
    *,
    overwrite: bool = False,
    progress: bool = True,
    src_storage_options: dict[str, Any] | None = None,
    dst_storage_options: dict[str, Any] | None = None,
) -> CopyResult:
    """Build the derived store privately, then publish it like ``copy``."""
    _check_destination(src, dst, overwrite)
    source = open_store(src, "r", storage_options=src_storage_options)
    quick_check(source)
    views, dtype, spec = _check(cfg, source)
    work = _workdir(dst)
    try:
        tmp = str(work / "store.zarr")
        out = create_store(tmp, _new_meta(source, views, dtype, spec, cfg), source.labels)
        _fill(source, out, views, spec, progress)
        out.write_meta(out.meta.replace(complete=True))
        return copy_store(
            tmp,
            dst,
            overwrite=overwrite,
            progress=progress,
            dst_storage_options=dst_storage_options,
            source_name=parse_location(src).raw,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_destination(src: str, dst: str, overwrite: bool) -> None:
    """Fail before any work: DST is, contains or lies inside SRC, DST exists locally without
    --overwrite, or --overwrite would replace something that is not a store."""
    s, d = parse_location(src), parse_location(dst)
    check_disjoint(d.raw, [("source", s.raw)], option="DST")
    if overwrite:
        check_replaceable(d.raw, "store", option="DST")
    taken = os.path.exists(d.path) and (not os.path.isdir(d.path) or any(Path(d.path).iterdir()))
    if d.is_local and taken and not overwrite:
        raise StoreExistsError(f"'{d.raw}' already exists; pass --overwrite to replace it")
