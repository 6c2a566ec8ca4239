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
import os
import time
from collections.abc import Sequence
from typing import Any

from sortkd_cache.errors import SchemaError
from sortkd_cache.store._backend import ROOT_META, Location, parse_location
from sortkd_cache.store._checks import (
    Problem,
    VerifyReport,
    quick_check,
    quick_problems,
)
from sortkd_cache.store._derived import derived_problems
from sortkd_cache.store._integrity import doc_problem
from sortkd_cache.store._keys import list_keys, read_keys_or_damage
from sortkd_cache.store._layout import LOGIT_KINDS, logits_path, progress_path
from sortkd_cache.store._leftovers import clean_stale_siblings, listing_checks
from sortkd_cache.store._meta import CHECKSUM_SCHEMA, StoreMeta
from sortkd_cache.store._scan import candidate_arrays, open_for_verify, progress_bar, scan_array
from sortkd_cache.store._schema import array_paths, grid_size, spec_for
from sortkd_cache.store._store import CacheStore
from sortkd_cache.store._zipcheck import ZipMemberError

__all__ = ["Problem", "VerifyReport", "quick_check", "quick_problems", "verify_store"]


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
    for key, raw in zip(docs, read_keys_or_damage(backend, loc, docs), strict=True):
        if raw is None:
            continue
        path = key[: -len("/zarr.json")] if key != ROOT_META else None
        category, msg = _doc_problem(raw, required)
        if msg is not None:
            problems.append(Problem(category, msg, path, "zarr.json"))
            if path is not None:
                bad.add(path)
    return problems, bad


def _doc_problem(raw: bytes | ZipMemberError, required: bool) -> tuple[str, str | None]:
    if isinstance(raw, ZipMemberError):
        return "checksum", f"zip member {raw.reason}"
    try:
        return "schema", doc_problem(json.loads(raw), required)
    except ValueError:
        return "schema", "is not valid JSON"


def _structural(problems: Sequence[Problem]) -> set[str | None]:
    """Arrays (None: the whole store) whose chunks must not be scanned: their declared
    shape, chunking or dtype disagrees with the layout, or exceeds the limits."""
    out: set[str | None] = set()
    for p in problems:
        unusable = p.chunk == "zarr.json" and p.category in ("schema", "checksum")
        if p.category in ("shape", "limits") or unusable:
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
    try:
        store, backend = open_for_verify(loc, storage_options)
    except ZipMemberError as exc:  # the root zarr.json itself is damaged
        return _unreadable(loc, exc, cleaned, t0)
    try:
        meta = store.meta
    except (SchemaError, ZipMemberError) as exc:
        return _unreadable(loc, exc, cleaned, t0)
    sizes = list_keys(backend, loc)
    keys = list(sizes) if sizes is not None else None
    problems, warnings, skipped = _listing(loc, keys, meta, cleaned)
    found, scan, present = _metadata_problems(store, backend, loc, keys)
    counts = [0, 0]
    found += _scan_chunks(store, scan, loc, progress, counts)
    problems += found
    if not any(p.category in ("schema", "shape") for p in problems):
        problems += store.layout.row_problems(store, present)
        problems += derived_problems(store, present)
    if dataset is not None:
        problems += _fingerprint_problems(store, dataset, data_root)
    else:
        skipped.append("dataset fingerprint (pass --dataset SPEC to check your copy)")
    return VerifyReport(
        location=loc.raw,
        problems=tuple(problems),
        warnings=tuple(warnings),
        arrays=tuple(scan),
        chunks_checked=counts[0],
        bytes_read=counts[1],
        seconds=time.perf_counter() - t0,
        fingerprint_checked=dataset is not None,
        skipped=tuple(skipped),
    )


def _unreadable(
    loc: Location, exc: SchemaError | ZipMemberError, cleaned: list[str], t0: float
) -> VerifyReport:
    """The report of a store whose root record cannot be read."""
    if isinstance(exc, ZipMemberError):
        bad = Problem("checksum", f"zip member {exc.reason}", None, exc.key)
    else:
        bad = Problem("schema", str(exc), chunk="zarr.json")
    return VerifyReport(loc.raw, (bad,), tuple(cleaned), seconds=time.perf_counter() - t0)


def _listing(
    loc: Location, keys: list[str] | None, meta: StoreMeta, cleaned: list[str]
) -> tuple[list[Problem], list[str], list[str]]:
    """(problems, warnings, skipped checks) of the key listing and the provenance."""
    problems, warnings = listing_checks(keys, loc)
    warnings = cleaned + warnings
    if meta.schema < CHECKSUM_SCHEMA:
        warnings.append(
            f"schema {meta.schema} store: its metadata carries no checksums, so an edit of its "
            "attributes cannot be detected (re-create it with this version to protect it)"
        )
    if meta.teacher.init == "random":
        warnings.append("the teacher was randomly initialised (a test or benchmark store)")
    skipped = [] if keys is not None else ["leftover partial files (http(s) cannot list keys)"]
    return problems, warnings, skipped


def _metadata_problems(
    store: CacheStore, backend: Any, loc: Location, keys: list[str] | None
) -> tuple[list[Problem], list[str], list[str]]:
    """(problems of the metadata, arrays whose chunks can be scanned, kinds present)."""
    required = store.meta.schema >= CHECKSUM_SCHEMA
    problems, broken = _node_problems(backend, loc, keys, required)
    arrays, unusable = candidate_arrays(store, keys, broken)
    problems += unusable
    broken_nodes = {p.array for p in problems if p.chunk == "zarr.json"}
    present = _present_kinds(store, broken_nodes)
    quick = _quick_problems_safe(store, present, broken_nodes)
    problems += quick
    blocked = _structural(quick) | {p.array for p in unusable}
    scan = [] if None in blocked else [p for p in arrays if p not in blocked]
    return problems, scan, present


def _scan_chunks(
    store: CacheStore, scan: list[str], loc: Location, progress: bool, counts: list[int]
) -> list[Problem]:
    """Every chunk of the arrays in ``scan``; ``counts`` gains [chunks, bytes] read."""
    problems: list[Problem] = []
    total = sum(grid_size(store.raw_array(p).shape, store.raw_array(p).chunks) for p in scan)
    with progress_bar(total, progress, "verify") as bar:
        for path in scan:
            found, n_chunks, n_bytes = scan_array(store, path, loc, bar)
            problems += found
            counts[0] += n_chunks
            counts[1] += n_bytes
    return problems


def _present_kinds(store: CacheStore, broken: set[str | None]) -> list[str]:
    present = []
    for k in LOGIT_KINDS:
        paths = (logits_path(k), progress_path(k))
        if any(p in broken for p in paths):
            continue
        try:
            if any(store.has_array(p) for p in paths):
                present.append(k)
        except (SchemaError, ZipMemberError):
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
    except ZipMemberError as exc:  # a damaged member that only quick_problems reads
        if any(exc.key.startswith(f"{path}/") for path in broken if path):
            return []
        return [Problem("checksum", f"zip member {exc.reason}", None, exc.key)]


def _fingerprint_problems(store: CacheStore, dataset: str, data_root: str | None) -> list[Problem]:
    from sortkd_cache.datasets import load_dataset  # torch: only a --dataset check loads it

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
