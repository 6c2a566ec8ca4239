"""``verify``: is a store complete, uncorrupted, well-formed, and made from my data?

:func:`verify_store` reads every chunk of every array once, as raw bytes, and checks it:
present (a missing chunk reads as the fill value, so it is looked up by key), its crc32c
checksum, that it decompresses to exactly one chunk of values, and the values themselves
(labels in range, no never-written augmentation rows, no NaN in logits). It also checks the
schema and provenance attributes, every array's shape/chunks/dtype/codecs against the
metadata, each node's metadata checksum (on the raw ``zarr.json`` bytes), that the progress
markers of each finished stage are all set, that no half-written ``*.partial`` file and no key
outside the store layout is present, and (with ``dataset``) the data fingerprint. Each
problem names the array and the chunk key (or ``zarr.json``).

Hostile metadata is answered with problems, not with memory: chunk keys are generated lazily
in batches, an array whose declared shape disagrees with the layout is not scanned, and the
provenance record's sizes are bounded (see :mod:`._checks`).

:func:`quick_check` is the cheap part (metadata, shapes, progress markers; no chunk data)
that a stage runs before it starts.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from sortkd_cache.errors import SchemaError, StoreError, StoreNotFoundError
from sortkd_cache.store._backend import ROOT_META, Location, open_backend, parse_location
from sortkd_cache.store._checks import (
    LAYOUT_CODECS,
    Problem,
    VerifyReport,
    quick_check,
    quick_problems,
)
from sortkd_cache.store._integrity import doc_problem
from sortkd_cache.store._keys import list_keys, read_keys
from sortkd_cache.store._layout import (
    LABELS,
    LOGIT_KINDS,
    PARAMS,
    logits_path,
    progress_path,
)
from sortkd_cache.store._leftovers import clean_stale_siblings, listing_checks
from sortkd_cache.store._meta import ATTRS_KEY, CHECKSUM_SCHEMA, SCHEMA_VERSION, StoreMeta
from sortkd_cache.store._schema import array_paths, grid_size, spec_for
from sortkd_cache.store._sparse import sparse_id_problem, sparse_row_problems
from sortkd_cache.store._store import CacheStore

__all__ = ["Problem", "VerifyReport", "quick_check", "quick_problems", "verify_store"]

_BATCH = 32  # chunks read per round trip
MAX_CHUNK_PROBLEMS = 1000  # per array; the rest are counted


def _node_problems(
    backend: Any, loc: Location, keys: Sequence[str] | None, required: bool
) -> tuple[list[Problem], set[str]]:
    """Each array's ``zarr.json`` read as raw bytes: valid JSON and a matching checksum.

    Returns the problems and the array paths they rule out (not scanned further)."""
    if keys is not None:
        docs = [k for k in keys if k.endswith("/zarr.json") and spec_for(k[:-10]) is not None]
    else:
        docs = [f"{p}/zarr.json" for p in array_paths()]
    docs.insert(0, ROOT_META)
    problems: list[Problem] = []
    bad: set[str] = set()
    for key, raw in zip(docs, read_keys(backend, loc, docs), strict=True):
        if raw is None:
            continue
        path = key[: -len("/zarr.json")] if key != ROOT_META else None
        try:
            msg = doc_problem(json.loads(raw), required)
        except ValueError:
            msg = "is not valid JSON"
        if msg is not None:
            problems.append(Problem("schema", msg, path, "zarr.json"))
            if path is not None:
                bad.add(path)
    return problems, bad


def _candidate_arrays(
    store: CacheStore, keys: Sequence[str] | None, skip: set[str] | None = None
) -> tuple[list[str], list[Problem]]:
    """Paths of the store's arrays (from the key listing, or the schema for http), and a
    problem naming the file for each whose metadata zarr cannot use."""
    import zarr

    if keys is not None:
        nodes = sorted({k.rsplit("/", 1)[0] for k in keys if k.endswith("/zarr.json")})
        nodes = [p for p in nodes if spec_for(p) is not None]
    else:
        nodes = array_paths()
    out: list[str] = []
    problems: list[Problem] = []
    for path in nodes:
        if path in (skip or set()):
            continue
        try:
            if store.has_array(path) and isinstance(store.raw_array(path), zarr.Array):
                out.append(path)
        except SchemaError as exc:
            problems.append(Problem("schema", str(exc), path, "zarr.json"))
    return out, problems


def _grid(arr: Any) -> list[int]:
    return [math.ceil(int(s) / int(c)) for s, c in zip(arr.shape, arr.chunks, strict=True)]


def _chunk_keys(arr: Any) -> Iterator[tuple[tuple[int, ...], str]]:
    for coords in np.ndindex(*_grid(arr)):
        yield tuple(int(c) for c in coords), arr.metadata.encode_chunk_key(coords)


def _decode(arr: Any, raw: bytes, coords: tuple[int, ...]) -> tuple[str, str] | np.ndarray:
    """The chunk's in-bounds values, or (category, message) when it fails its checks."""
    import google_crc32c
    import numcodecs

    names = [type(c).__name__ for c in arr.metadata.codecs]
    dtype = np.dtype(arr.dtype)
    if names == list(LAYOUT_CODECS):
        if len(raw) <= 4:
            return "truncated", f"truncated: {len(raw)} bytes"
        payload, stored = raw[:-4], raw[-4:]
        crc_ok = google_crc32c.value(payload) == int.from_bytes(stored, "little")
        try:
            data = numcodecs.Zstd().decode(payload)
        except (RuntimeError, ValueError):
            if crc_ok:
                return "corrupt", f"passes its checksum but does not decompress ({len(raw)} bytes)"
            return "checksum", (
                f"failed its crc32c checksum and does not decompress ({len(raw)} bytes: "
                "truncated or damaged)"
            )
        if not crc_ok:
            return "checksum", f"failed its crc32c checksum ({len(raw)} bytes: damaged)"
        want = math.prod(int(c) for c in arr.chunks) * dtype.itemsize
        if len(data) != want:
            return "truncated", f"decompresses to {len(data)} bytes, expected {want}"
        values = np.frombuffer(data, dtype=dtype.newbyteorder("<")).reshape(arr.chunks)
    else:  # an unusual codec chain: let zarr decode it (it checks any checksum codec)
        try:
            values = np.asarray(arr.get_block_selection(coords))
        except Exception as exc:
            return "corrupt", f"cannot be decoded ({type(exc).__name__}: {exc})"
        return values
    region = tuple(
        slice(0, min(int(c), int(s) - i * int(c)))
        for i, c, s in zip(coords, arr.chunks, arr.shape, strict=True)
    )
    return values[region]


def _content_problem(path: str, values: np.ndarray, meta: StoreMeta) -> str | None:
    if path == LABELS and ((values < 0) | (values >= meta.num_classes)).any():
        return f"labels outside [0, {meta.num_classes})"
    if path == PARAMS and (values < 0).any():
        return "augmentation parameters never written (-1)"
    if path.startswith("logits/") and path.endswith("/ids"):
        return sparse_id_problem(values, meta.num_classes)
    if path.startswith("logits/") and values.dtype.kind == "f" and not np.isfinite(values).all():
        return "contains NaN/Inf logits (rows never written?)"
    return None


def _unwritten(store: CacheStore, path: str) -> np.ndarray | None:
    """[blocks, V] True where the stage writing ``path`` has not written the chunk yet.

    A missing chunk there is an unfinished stage (reported once, by its progress), not damage.
    None: every chunk of ``path`` must exist.
    """
    if path.startswith("progress/"):
        kind = path.split("/", 1)[1]
        finished = store.meta.complete if kind == "raw" else store.kind_complete(kind)
        return None if finished else np.ones((store.num_blocks, store.num_views), dtype=bool)
    for kind in LOGIT_KINDS:
        if (
            path == logits_path(kind)
            or path.startswith(f"{logits_path(kind)}_topk/")
            or path.startswith(f"{logits_path(kind)}/")
        ):
            return store.progress(kind) < 0 if store.has_array(progress_path(kind)) else None
    if path == PARAMS:
        return store.progress("raw") < 0
    return None


def _batches(arr: Any) -> Iterator[list[tuple[tuple[int, ...], str]]]:
    """The chunk keys of ``arr`` in batches, generated lazily (memory independent of the
    declared shape)."""
    batch: list[tuple[tuple[int, ...], str]] = []
    for item in _chunk_keys(arr):
        batch.append(item)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _scan_array(
    store: CacheStore, path: str, loc: Location, bar: Any
) -> tuple[list[Problem], int, int]:
    arr = store.raw_array(path)
    meta = store.meta
    try:
        pending = _unwritten(store, path)
    except StoreError:
        pending = None
    problems: list[Problem] = []
    nbytes = checked = hidden = 0
    prefix = f"{path}/"
    for batch in _batches(arr):
        raws = read_keys(arr.store, loc, [prefix + key for _, key in batch])
        bar.update(len(batch))
        for (coords, key), raw in zip(batch, raws, strict=True):
            checked += 1
            found: Problem | None = None
            if raw is None:
                written = pending is None or not bool(pending[coords[0], coords[1]])
                if written:
                    found = Problem("missing", "chunk is missing", path, key)
            else:
                nbytes += len(raw)
                out = _decode(arr, raw, coords)
                if isinstance(out, tuple):
                    found = Problem(out[0], out[1], path, key)
                elif (bad := _content_problem(path, out, meta)) is not None:
                    found = Problem("content", bad, path, key)
            if found is not None and len(problems) < MAX_CHUNK_PROBLEMS:
                problems.append(found)
            elif found is not None:
                hidden += 1
    if hidden:
        problems.append(Problem("corrupt", f"... and {hidden} more damaged chunks", path))
    return problems, checked, nbytes


def _open_for_verify(
    loc: Location, storage_options: dict[str, Any] | None
) -> tuple[CacheStore, Any]:
    """The store and its zarr backend; raises (exit 2) when ``loc`` holds no store at all."""
    import zarr

    backend = open_backend(loc, "r", storage_options)
    try:
        group = zarr.open_group(backend, mode="r")
    except (FileNotFoundError, ValueError, TypeError, KeyError) as exc:
        raise StoreNotFoundError(f"'{loc.raw}' is not a sortkd-cache store ({exc})") from None
    record = dict(group.attrs).get(ATTRS_KEY)
    if not isinstance(record, dict):
        raise StoreNotFoundError(f"'{loc.raw}' is a zarr store but not a sortkd-cache store")
    schema = record.get("schema")
    if isinstance(schema, int) and schema > SCHEMA_VERSION:
        StoreMeta.from_dict(record)  # raises the "newer schema, upgrade" SchemaError
    return CacheStore(loc, "r", group), backend


def _progress(total: int | None, enabled: bool, desc: str, unit: str = "chunk") -> Any:
    """A tqdm bar on stderr (rate and ETA); off when disabled or SORTKD_NO_PROGRESS=1."""
    import sys

    from tqdm.auto import tqdm

    disable = not enabled or os.environ.get("SORTKD_NO_PROGRESS") == "1"
    scale = {"unit_scale": True, "unit_divisor": 1024} if unit == "B" else {}
    kw: dict[str, Any] = {"mininterval": 0.5, "dynamic_ncols": True, "file": sys.stderr}
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, **scale, **kw)


def _structural(problems: Sequence[Problem]) -> set[str | None]:
    """Arrays (None: the whole store) whose chunks must not be scanned: their declared
    shape, chunking or dtype disagrees with the layout, or exceeds the limits."""
    out: set[str | None] = set()
    for p in problems:
        if p.category in ("shape", "limits") or (p.category, p.chunk) == ("schema", "zarr.json"):
            out.add(p.array)
    return out


def verify_store(
    location: str | os.PathLike[str] | Location,
    dataset: str | None = None,
    storage_options: dict[str, Any] | None = None,
    *,
    data_root: str | None = None,
    progress: bool = False,
) -> VerifyReport:
    """Check a store end to end (see the module docstring); never modifies it.

    Raises (exit code 2) only when ``location`` cannot be opened as a store at all; anything
    wrong inside a store is reported as a :class:`Problem` in the returned report. Memory is
    bounded by one batch of chunks, whatever shapes the metadata declares.
    """
    t0 = time.perf_counter()
    loc = location if isinstance(location, Location) else parse_location(location)
    cleaned = clean_stale_siblings(loc)
    store, backend = _open_for_verify(loc, storage_options)
    try:
        meta = store.meta
    except SchemaError as exc:
        bad = (Problem("schema", str(exc), chunk="zarr.json"),)
        return VerifyReport(loc.raw, bad, tuple(cleaned), seconds=time.perf_counter() - t0)
    sizes = list_keys(backend, loc)
    keys = list(sizes) if sizes is not None else None
    problems, warnings = listing_checks(keys, loc)
    warnings = cleaned + warnings
    if meta.schema < CHECKSUM_SCHEMA:
        warnings.append(
            f"schema {meta.schema} store: its metadata carries no checksums, so an edit of its "
            "attributes cannot be detected (re-create it with this version to protect it)"
        )
    skipped = [] if keys is not None else ["leftover partial files (http(s) cannot list keys)"]
    node_problems, broken = _node_problems(backend, loc, keys, meta.schema >= CHECKSUM_SCHEMA)
    problems += node_problems
    arrays, unusable = _candidate_arrays(store, keys, broken)
    problems += unusable
    broken_nodes = {p.array for p in problems if p.chunk == "zarr.json"}
    present = _present_kinds(store, broken_nodes)
    quick = _quick_problems_safe(store, present, broken_nodes)
    problems += quick
    blocked = _structural(quick) | {p.array for p in unusable}
    scan = [] if None in blocked else [p for p in arrays if p not in blocked]
    checked = nbytes = 0
    total = sum(grid_size(store.raw_array(p).shape, store.raw_array(p).chunks) for p in scan)
    with _progress(total, progress, "verify") as bar:
        for path in scan:
            found, n_chunks, n_bytes = _scan_array(store, path, loc, bar)
            problems += found
            checked += n_chunks
            nbytes += n_bytes
    if store.is_sparse and not any(p.category in ("schema", "shape") for p in problems):
        problems += sparse_row_problems(store, present)
    if meta.teacher.init == "random":
        warnings.append("the teacher was randomly initialised (a test or benchmark store)")
    if dataset is not None:
        problems += _fingerprint_problems(store, dataset, data_root)
    else:
        skipped.append("dataset fingerprint (pass --dataset SPEC to check your copy)")
    return VerifyReport(
        location=loc.raw,
        problems=tuple(problems),
        warnings=tuple(warnings),
        arrays=tuple(scan),
        chunks_checked=checked,
        bytes_read=nbytes,
        seconds=time.perf_counter() - t0,
        fingerprint_checked=dataset is not None,
        skipped=tuple(skipped),
    )


def _present_kinds(store: CacheStore, broken: set[str | None]) -> list[str]:
    present = []
    for k in LOGIT_KINDS:
        paths = (logits_path(k), progress_path(k))
        if any(p in broken for p in paths):
            continue
        try:
            if any(store.has_array(p) for p in paths):
                present.append(k)
        except SchemaError:
            continue
    return present


def _quick_problems_safe(
    store: CacheStore, present: list[str], broken: set[str | None]
) -> list[Problem]:
    """:func:`quick_problems` over the kinds present; arrays already reported as unusable
    are left out (their problem is named once, with their file)."""
    try:
        return [p for p in quick_problems(store, present or ["raw"]) if p.array not in broken]
    except SchemaError as exc:  # an array unusable in a way only quick_problems reaches
        if any(f"{path}/zarr.json" in str(exc) for path in broken if path):
            return []  # already reported with its file
        return [Problem("schema", str(exc))]


def _fingerprint_problems(store: CacheStore, dataset: str, data_root: str | None) -> list[Problem]:
    from sortkd_cache.datasets import load_dataset

    meta = store.meta
    ds = load_dataset(dataset, meta.dataset.split, data_root=data_root)
    got, want = ds.fingerprint(), meta.dataset.fingerprint
    if got != want:
        msg = (
            f"dataset '{dataset}' ({meta.dataset.split} split) has fingerprint {got[:23]}..., "
            f"the store was made from {meta.dataset.spec} with {want[:23]}..."
        )
    elif len(ds) != meta.num_samples:
        msg = f"dataset '{dataset}' has {len(ds)} samples, the store {meta.num_samples}"
    else:
        return []
    return [Problem("fingerprint", msg)]
