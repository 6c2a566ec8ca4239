"""The cheap checks of a store (no chunk data): schema, provenance, shapes, progress.

:func:`quick_check` is what a stage runs before it starts; :mod:`._verify` adds the full
read of every chunk on top of these.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from sortkd_cache.augment import VERSIONS, canonical_recipe, get_recipe
from sortkd_cache.errors import AugmentError, CorruptChunkError, SchemaError, StoreError
from sortkd_cache.store._layout import LABELS, PARAMS, logits_path, progress_path
from sortkd_cache.store._meta import StoreMeta
from sortkd_cache.store._problem import Problem, VerifyReport
from sortkd_cache.store._schema import expected
from sortkd_cache.store._store import CacheStore

__all__ = ["Problem", "VerifyReport", "quick_check", "quick_problems"]

STRUCTURAL = ("schema", "shape", "provenance", "limits")
#: what a store may declare: verify and the readers allocate per chunk, per block of the
#: progress markers and per row of labels, so a hostile record cannot make them run out of
#: memory (1 << 24 chunks of (block, view) is 1.3e8 ImageNet-sized chunks' worth of headroom)
MAX_CHUNKS = 1 << 24
MAX_CHUNK_BYTES = 1 << 30
MAX_CLASSES = 1 << 24
_SHA = re.compile(r"^(sha256:)?[0-9a-f]{64}$")
LAYOUT_CODECS = ("BytesCodec", "ZstdCodec", "Crc32cCodec")


# -- the cheap part ---------------------------------------------------------------------------
def _fill_problem(path: str, arr: Any, want: str | int) -> Problem | None:
    fill = arr.metadata.fill_value
    try:
        ok = bool(np.isnan(fill)) if want == "nan" else (not np.isnan(fill) and fill == want)
    except TypeError:
        ok = False
    if ok:
        return None
    why = " (a missing chunk would read as data instead of NaN)" if want == "nan" else ""
    shown = fill.item() if isinstance(fill, np.generic) else fill
    return Problem("schema", f"fill value {shown!r}, the layout writes {want!r}{why}", path)


def _array_problems(meta: StoreMeta, path: str, arr: Any) -> list[Problem]:
    out: list[Problem] = []
    shape, chunks = tuple(int(x) for x in arr.shape), tuple(int(x) for x in arr.chunks)
    dtype = np.dtype(arr.dtype)
    want = expected(meta, path)
    if want is None:
        return [Problem("schema", "array is not part of the store layout", path)]
    w_shape, w_chunks, w_dtype, w_fill = want
    if w_shape is not None and shape != w_shape:
        out.append(Problem("shape", f"shape {shape}, metadata says {w_shape}", path))
    if w_shape is None and shape[:2] != (meta.num_samples, meta.num_views):
        out.append(Problem("shape", f"shape {shape} does not start with [N, V]", path))
    if w_chunks is not None and chunks != w_chunks:
        out.append(Problem("shape", f"chunks {chunks}, layout says {w_chunks}", path))
    if w_chunks is None and (len(chunks) != len(shape) or chunks[:2] != (meta.chunk_samples, 1)):
        out.append(Problem("shape", f"chunks {chunks} are not [S, 1, ...]", path))
    if (w_dtype == "integer" and dtype.kind not in "iu") or (
        w_dtype != "integer" and str(dtype) != w_dtype
    ):
        out.append(Problem("shape", f"dtype {dtype}, expected {w_dtype}", path))
    elif (fill := _fill_problem(path, arr, w_fill)) is not None:
        out.append(fill)
    names = [type(c).__name__ for c in arr.metadata.codecs]
    if names != list(LAYOUT_CODECS):
        out.append(
            Problem(
                "schema",
                f"codecs {names}; the layout writes {list(LAYOUT_CODECS)}"
                " (every chunk zstd-compressed and crc32c-checksummed)",
                path,
            )
        )
    if np.dtype(arr.dtype).kind not in "biuf":
        out.append(Problem("schema", f"non-numeric dtype {arr.dtype}", path))
    return out


def _provenance_problems(meta: StoreMeta) -> list[Problem]:
    out: list[Problem] = []
    ds, t = meta.dataset, meta.teacher

    def bad(msg: str) -> None:
        out.append(Problem("provenance", msg))

    if not _SHA.match(ds.fingerprint.lower()):
        bad(f"dataset fingerprint {ds.fingerprint!r} is not a sha256 digest")
    if (ds.num_samples, ds.num_classes) != (meta.num_samples, meta.num_classes):
        bad(
            f"dataset record has {ds.num_samples} samples / {ds.num_classes} classes, "
            f"store has {meta.num_samples} / {meta.num_classes}"
        )
    if t.init not in ("checkpoint", "pretrained", "random"):
        bad(f"teacher init {t.init!r} is not 'checkpoint', 'pretrained' or 'random'")
    if t.init != "random" and not (t.sha256 and _SHA.match(t.sha256.lower())):
        bad(f"teacher weights sha256 {t.sha256!r} is missing or malformed")
    if meta.dtype not in ("float16", "float32"):
        bad(f"logits dtype {meta.dtype!r} is not float16 or float32")
    if min(meta.num_samples, meta.num_views, meta.num_classes, meta.chunk_samples) < 1:
        bad("num_samples, num_views, num_classes and chunk_samples must all be >= 1")
    out += _limit_problems(meta)
    if not meta.tool_version or not meta.created:
        bad("tool_version or created is empty")
    recipe = _recipe_problem(meta.augment)
    if recipe is not None:
        bad(recipe)
    return out


def _limit_problems(meta: StoreMeta) -> list[Problem]:
    """Declared sizes beyond what any reader may allocate for (see MAX_CHUNKS)."""
    n, v, c, s = meta.num_samples, meta.num_views, meta.num_classes, meta.chunk_samples
    if min(n, v, c, s) < 1:
        return [Problem("limits", "sizes below 1 declared")]
    chunks = -(-n // s) * v
    itemsize = 4 if meta.dtype == "float32" else 2
    out = []
    if chunks > MAX_CHUNKS:
        out.append(Problem("limits", f"declares {chunks} chunks per array, over {MAX_CHUNKS}"))
    if min(s, n) * c * itemsize > MAX_CHUNK_BYTES:
        out.append(
            Problem(
                "limits",
                f"declares chunks of {min(s, n) * c * itemsize} bytes, over {MAX_CHUNK_BYTES}",
            )
        )
    if c > MAX_CLASSES:
        out.append(Problem("limits", f"declares {c} classes, over {MAX_CLASSES}"))
    return out


def _recipe_problem(augment: dict[str, Any]) -> str | None:
    """The recorded recipe must be a known one with its canonical parameters: replay (and so
    what ``train`` shows the student) depends on every one of them."""
    name = augment.get("name")
    if not isinstance(name, str):
        return "augmentation recipe has no 'name'"
    version = augment.get("version", 1)
    try:  # an unknown version reads as 1, and is named as the difference below
        canonical = get_recipe(name, version if version in VERSIONS else 1).to_dict()
    except AugmentError:
        return f"augmentation recipe {name!r} is not a known recipe"
    if canonical["kind"] == "eval":  # the teacher's crop fraction and interpolation
        try:
            canonical = canonical_recipe(augment).to_dict()
        except AugmentError as exc:
            return str(exc)
    if augment != canonical:
        diff = sorted(k for k in {*augment, *canonical} if augment.get(k) != canonical.get(k))
        return (
            f"augmentation recipe {name!r} has {diff[0]}={augment.get(diff[0])!r}; "
            f"the recipe {name!r} is {diff[0]}={canonical.get(diff[0])!r}"
        )
    return None


def _progress_problems(store: CacheStore, kind: str, expect_complete: bool) -> list[Problem]:
    path = progress_path(kind)
    if not store.has_array(path):
        return [Problem("schema", "progress markers are missing", path)]
    try:
        done = int((store.progress(kind) >= 0).sum())
    except StoreError as exc:
        return [Problem("progress", f"progress markers unreadable ({exc})", path)]
    total = store.num_blocks * store.num_views
    if done == total:
        return []
    if expect_complete:
        msg = f"marked complete but only {done}/{total} chunks have a progress marker"
    elif kind == "raw":
        msg = f"dump incomplete: {done}/{total} chunks written (resume it with dump --resume)"
    else:
        msg = f"'{kind}' incomplete: {done}/{total} chunks written (rerun sort --method {kind})"
    return [Problem("progress", msg, logits_path(kind))]


def _kind_arrays(store: CacheStore, kind: str) -> list[str]:
    """The arrays holding a kind's logits: one dense array, or the sparse group's arrays."""
    return store.layout.kind_arrays(store, kind)


def quick_problems(store: CacheStore, kinds: Sequence[str] | None = None) -> list[Problem]:
    """Metadata, shapes, dtypes, checksummed codecs, provenance and progress (no chunk data).

    ``kinds``: the logits kinds to check (default: raw where present, and every kind marked
    complete). A stage passes the kind it will read, e.g. ``quick_check(store, ["sort"])``.
    """
    meta = store.meta
    out = _provenance_problems(meta)
    if any(p.category == "limits" for p in out):
        return out  # nothing sized by the record is read
    if not meta.complete:
        out += _progress_problems(store, "raw", False) or [
            Problem("progress", "dump not finalised (the store is not marked complete)")
        ]
    if kinds is None:  # a `sort --out` store holds no raw logits
        raw = ["raw"] if store.has_array(logits_path("raw")) else []
        kinds = [*raw, *store.kinds()] or ["raw"]
    wanted = list(kinds)
    paths = [LABELS, PARAMS]
    for kind in dict.fromkeys(wanted):
        if not store.has_array(logits_path(kind)):
            out.append(Problem("schema", "array is missing", logits_path(kind)))
            continue
        paths += [*_kind_arrays(store, kind), progress_path(kind)]
        if kind != "raw" or meta.complete:
            complete = store.kind_complete(kind)
            out += _progress_problems(store, kind, complete)
    for path in paths:
        if not store.has_array(path):
            if path not in {p.array for p in out}:
                out.append(Problem("schema", "array is missing", path))
            continue
        out += _array_problems(meta, path, store.raw_array(path))
    return out


def quick_check(store: CacheStore, kinds: Sequence[str] | None = None) -> None:
    """Raise (SchemaError or CorruptChunkError) when :func:`quick_problems` finds anything."""
    problems = quick_problems(store, kinds)
    if not problems:
        return
    first = problems[0]
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    msg = (
        f"store '{store.url}' failed its check: {first}{more}; "
        f"run `sortkd-cache verify {store.url}`"
    )
    if first.category in STRUCTURAL:
        raise SchemaError(msg)
    raise CorruptChunkError(msg)
