"""``copy``: any readable store to a directory, a ``.zip``, ``s3://`` or ``gs://``.

The raw bytes of every key are copied as they are (no decoding, no re-encoding), so every
chunk keeps its checksum and a round trip dir -> zip -> dir is byte-identical. The writer lock
file and half-written ``*.partial`` files are not copied. A destination is never seen half
written; it is written aside, checked, then published:

* directory: written into ``DST.partial-<host>-<pid>``, verified, then renamed to ``DST``;
* zip: written into ``DST.partial-<host>-<pid>`` (stored, not recompressed), verified, then
  ``os.replace``-d onto ``DST``; a zip at an s3/gs URL is built locally, verified, and
  uploaded in one PUT (an object appears only once its upload completes);
* s3/gs prefix: the keys are written with the root ``zarr.json`` last: until it exists no
  reader sees a store there. The destination is then verified in place; when it fails the root
  ``zarr.json`` is removed again (unpublished). Overwriting first removes the old root
  ``zarr.json``, then the old keys.

Only keys of the store's schema are copied (:mod:`._schema`); a source holding any other key
(``../x``, ``/abs/path`` or ``a/../../x`` in a crafted zip) is refused before anything is
written, and the directory writer refuses any key that would resolve outside its
``DST.partial-<host>-<pid>``. DST must not be, contain or lie inside SRC (paths resolved, symlinks
included). An existing destination is replaced only with ``overwrite=True``, and only when it
is provably a store (:func:`sortkd_cache.outputs.check_replaceable`): never a file or a
directory of something else. Leftovers of a killed copy beside DST are removed first
(:mod:`._leftovers`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from typing import Any

from sortkd_cache.errors import CorruptChunkError, StoreError, StoreLockedError, StoreReadOnlyError
from sortkd_cache.locks import LOCK_NAME, is_stale, read_lock
from sortkd_cache.outputs import check_disjoint, check_replaceable
from sortkd_cache.store._backend import ROOT_META, Location, parse_location
from sortkd_cache.store._checks import quick_problems
from sortkd_cache.store._copy_writers import make_writer
from sortkd_cache.store._keys import list_keys, read_keys
from sortkd_cache.store._layout import LOGIT_KINDS
from sortkd_cache.store._leftovers import clean_stale_siblings
from sortkd_cache.store._scan import candidate_arrays, chunk_keys, open_for_verify, progress_bar
from sortkd_cache.store._schema import GROUPS, is_schema_key
from sortkd_cache.store._store import CacheStore
from sortkd_cache.store._verify import VerifyReport

__all__ = ["CopyResult", "copy_store"]

_KINDS = LOGIT_KINDS

_BATCH = 32


@dataclass(frozen=True)
class CopyResult:
    """What :func:`copy_store` did."""

    src: str
    dst: str
    keys: int
    bytes: int
    seconds: float
    verify: VerifyReport
    cleaned: tuple[str, ...] = ()  # leftovers of killed copies removed beside DST

    def to_dict(self) -> dict[str, Any]:
        return {
            "src": self.src,
            "dst": self.dst,
            "keys": self.keys,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "verify": self.verify.to_dict(),
            "cleaned": list(self.cleaned),
        }


# -- source -----------------------------------------------------------------------------------
def _source_keys(
    source: CacheStore, backend: Any, loc: Location, name: str
) -> dict[str, int | None]:
    """Keys to copy with their sizes (None when unknown: keys derived from the metadata).

    Only keys of the store's schema are copied. A source holding any other key (a name like
    ``../x`` or ``/abs`` in a crafted zip, or a stray file) is refused: nothing is written."""
    sizes = list_keys(backend, loc)
    if sizes is not None:
        leftovers = {k for k in sizes if k == LOCK_NAME or ".partial" in k}
        foreign = [k for k in sizes if k not in leftovers and not is_schema_key(k)]
        if foreign:
            more = f" (+{len(foreign) - 1} more)" if len(foreign) > 1 else ""
            raise StoreError(
                f"source '{name}' holds {foreign[0]!r}{more}, which is no key of a "
                f"sortkd-cache store; nothing was copied (see `sortkd-cache verify {name}`)"
            )
        return {k: n for k, n in sizes.items() if k not in leftovers}
    keys = [ROOT_META] + [f"{g.format(kind=k)}/zarr.json" for g in GROUPS[1:] for k in _KINDS]
    arrays, unusable = candidate_arrays(source, None)
    if unusable:
        raise StoreError(f"source '{name}': {unusable[0].message}")
    for path in arrays:
        keys.append(f"{path}/zarr.json")
        keys += [f"{path}/{key}" for _, key in chunk_keys(source.raw_array(path))]
    return dict.fromkeys(keys)


def _open_source(
    loc: Location, opts: dict[str, Any] | None, name: str
) -> tuple[Any, dict[str, int | None]]:
    """The source's zarr backend and the keys to copy, once the source passed its checks:
    not being written, a readable record of this schema, shapes within the limits."""
    _check_source_unlocked(loc)
    source, backend = open_for_verify(loc, opts)
    source.meta  # noqa: B018 - refuses a malformed or newer-schema source before any copying
    for p in quick_problems(source):
        if p.category in ("limits", "shape"):  # a hostile shape must not make the copy allocate
            raise StoreError(f"source '{name}' failed its check: {p}; nothing was copied")
    return backend, _source_keys(source, backend, loc, name)


def _check_source_unlocked(loc: Location) -> None:
    if loc.kind != "dir":
        return
    held = read_lock(loc.path)
    if held is not None and not is_stale(held):
        raise StoreLockedError(
            f"store '{loc.raw}' is being written by {held.get('purpose', '?')} (host "
            f"{held.get('host')}, pid {held.get('pid')}, since {held.get('since')}); "
            "copy it when that writer is done"
        )


def _check_destination(src: Location, dst: Location) -> None:
    check_disjoint(dst.raw, [("source", src.raw)], option="DST")
    if dst.kind == "remote" and not dst.scheme_info.writable:
        raise StoreReadOnlyError(
            f"'{dst.raw}' is read-only ({dst.scheme}:// stores cannot be written); "
            "copy to a directory, a .zip, or a writable URL (s3://, gs://)"
        )


def _write_keys(
    writer: Any, backend: Any, loc: Location, keys: dict[str, int | None], bar: Any
) -> tuple[int, int]:
    """Every key read from the source and handed to ``writer``: (keys, bytes) copied."""
    copied = nbytes = 0
    names = list(keys)
    for start in range(0, len(names), _BATCH):
        batch = names[start : start + _BATCH]
        values = read_keys(backend, loc, batch)
        items = [(k, v) for k, v in zip(batch, values, strict=True) if v is not None]
        writer.put_many(items)
        size = sum(len(v) for _, v in items)
        copied, nbytes = copied + len(items), nbytes + size
        bar.update(size)
    return copied, nbytes


def copy_store(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: bool = True,
    storage_options: dict[str, Any] | None = None,
    src_storage_options: dict[str, Any] | None = None,
    dst_storage_options: dict[str, Any] | None = None,
    source_name: str | None = None,
) -> CopyResult:
    """Copy a store key by key from ``src`` to ``dst``; see the module docstring.

    ``storage_options`` apply to both sides; ``src_/dst_storage_options`` are merged over
    them. The destination is verified before (local) or right after (s3/gs) it is published;
    a destination that does not verify is removed and :class:`CorruptChunkError` is raised.
    ``source_name`` is how messages name the source (default: ``src``; ``copy --views``
    publishes a private build that messages must not point at).
    """
    t0 = time.perf_counter()
    src_loc, dst_loc = parse_location(src), parse_location(dst)
    dst_opts = {**(storage_options or {}), **(dst_storage_options or {})} or None
    name = source_name or src_loc.raw
    _check_destination(src_loc, dst_loc)
    src_opts = {**(storage_options or {}), **(src_storage_options or {})}
    backend, keys = _open_source(src_loc, src_opts or None, name)
    if overwrite:
        check_replaceable(dst_loc.raw, "store", option="DST", storage_options=dst_opts)
    cleaned = tuple(clean_stale_siblings(dst_loc))
    writer = make_writer(dst_loc, overwrite, dst_opts)
    sizes = [n for n in keys.values() if n is not None]
    total = sum(sizes) if len(sizes) == len(keys) else None
    try:
        with progress_bar(total, progress, f"copy -> {dst_loc.raw}", unit="B") as bar:
            copied, nbytes = _write_keys(writer, backend, src_loc, keys, bar)
        report = writer.check(progress)
        if not report.sound:
            raise CorruptChunkError(
                f"the copy of '{name}' does not verify ({len(report.problems)} problem(s), "
                f"first: {report.problems[0]}); nothing was published; run "
                f"`sortkd-cache verify {name}`"
            )
        writer.publish()
    except BaseException:
        writer.abort()
        raise
    report = dataclasses.replace(report, location=dst_loc.raw)
    seconds = time.perf_counter() - t0
    return CopyResult(name, dst_loc.raw, copied, nbytes, seconds, report, cleaned)
