"""Reading a store's chunks for ``verify`` and ``copy``: which arrays there are, their chunk
keys (generated lazily), and each chunk's raw bytes checked: present, its crc32c checksum, that
it decompresses to exactly one chunk, and the values themselves (labels in range, no
never-written augmentation rows, no NaN in logits). A zip member that fails its own CRC-32 is a
``checksum`` problem too. Each problem names the array and the chunk key.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import google_crc32c
import numcodecs
import numpy as np
import zarr
from tqdm.auto import tqdm
from zarr.abc.store import Store
from zarr.types import ArrayV3

from sortkd_cache.errors import SchemaError, StoreError, StoreNotFoundError
from sortkd_cache.store._backend import Location, open_backend
from sortkd_cache.store._checks import LAYOUT_CODECS, Problem
from sortkd_cache.store._keys import read_keys_or_damage
from sortkd_cache.store._layout import LABELS, LOGIT_KINDS, PARAMS, logits_path, progress_path
from sortkd_cache.store._meta import ATTRS_KEY, SCHEMA_VERSION, StoreMeta
from sortkd_cache.store._schema import array_paths, spec_for
from sortkd_cache.store._sparse import sparse_id_problem
from sortkd_cache.store._store import CacheStore
from sortkd_cache.store._zarr_compat import ArrayV3Metadata
from sortkd_cache.store._zipcheck import ZipMemberError

__all__ = [
    "MAX_CHUNK_PROBLEMS",
    "candidate_arrays",
    "chunk_keys",
    "open_for_verify",
    "progress_bar",
    "scan_array",
]

_BATCH = 32  # chunks read per round trip
MAX_CHUNK_PROBLEMS = 1000  # per array; the rest are counted


def candidate_arrays(
    store: CacheStore, keys: Sequence[str] | None, skip: set[str] | None = None
) -> tuple[list[str], list[Problem]]:
    """Paths of the store's arrays (from the key listing, or the schema for http), and a
    problem naming the file for each whose metadata zarr cannot use."""
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


def _grid(arr: ArrayV3) -> list[int]:
    return [math.ceil(int(s) / int(c)) for s, c in zip(arr.shape, arr.chunks, strict=True)]


def chunk_keys(arr: ArrayV3) -> Iterator[tuple[tuple[int, ...], str]]:
    for coords in np.ndindex(*_grid(arr)):
        yield tuple(int(c) for c in coords), arr.metadata.encode_chunk_key(coords)


def _decode(arr: ArrayV3, raw: bytes, coords: tuple[int, ...]) -> tuple[str, str] | np.ndarray:
    """The chunk's in-bounds values, or (category, message) when it fails its checks."""
    if not isinstance(arr.metadata, ArrayV3Metadata):
        return "schema", "not a zarr v3 array"
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


def _batches(arr: ArrayV3) -> Iterator[list[tuple[tuple[int, ...], str]]]:
    """The chunk keys of ``arr`` in batches, generated lazily (memory independent of the
    declared shape)."""
    batch: list[tuple[tuple[int, ...], str]] = []
    for item in chunk_keys(arr):
        batch.append(item)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _chunk_problem(
    arr: ArrayV3, path: str, coords: tuple[int, ...], key: str, raw: bytes, meta: StoreMeta
) -> Problem | None:
    out = _decode(arr, raw, coords)
    if isinstance(out, tuple):
        return Problem(out[0], out[1], path, key)
    bad = _content_problem(path, out, meta)
    return None if bad is None else Problem("content", bad, path, key)


def scan_array(
    store: CacheStore, path: str, loc: Location, bar: tqdm[None]
) -> tuple[list[Problem], int, int]:
    """Every chunk of ``path`` read once and checked: (problems, chunks checked, bytes)."""
    arr = store.raw_array(path)
    try:
        pending = _unwritten(store, path)
    except StoreError:
        pending = None
    problems: list[Problem] = []
    nbytes = checked = hidden = 0
    for batch in _batches(arr):
        raws = read_keys_or_damage(arr.store, loc, [f"{path}/{key}" for _, key in batch])
        bar.update(len(batch))
        for (coords, key), raw in zip(batch, raws, strict=True):
            checked += 1
            found: Problem | None = None
            if isinstance(raw, ZipMemberError):
                found = Problem("checksum", f"zip member {raw.reason}", path, key)
            elif raw is None:
                if pending is None or not bool(pending[coords[0], coords[1]]):
                    found = Problem("missing", "chunk is missing", path, key)
            else:
                nbytes += len(raw)
                found = _chunk_problem(arr, path, coords, key, raw, store.meta)
            if found is not None and len(problems) < MAX_CHUNK_PROBLEMS:
                problems.append(found)
            elif found is not None:
                hidden += 1
    if hidden:
        problems.append(Problem("corrupt", f"... and {hidden} more damaged chunks", path))
    return problems, checked, nbytes


def open_for_verify(
    loc: Location, storage_options: dict[str, Any] | None
) -> tuple[CacheStore, Store]:
    """The store and its zarr backend; raises (exit 2) when ``loc`` holds no store at all."""
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


def progress_bar(total: int | None, enabled: bool, desc: str, unit: str = "chunk") -> tqdm[None]:
    """A tqdm bar on stderr (rate and ETA); off when disabled or SORTKD_NO_PROGRESS=1."""
    disable = not enabled or os.environ.get("SORTKD_NO_PROGRESS") == "1"
    scale = {"unit_scale": True, "unit_divisor": 1024} if unit == "B" else {}
    kw: dict[str, Any] = {"mininterval": 0.5, "dynamic_ncols": True, "file": sys.stderr}
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, **scale, **kw)
