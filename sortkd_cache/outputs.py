"""Outputs that cannot destroy inputs: resolve paths, refuse overlaps, prove an old output.

Every writing command (``dump --out``, ``sort --out``, ``copy``, ``train --out``) calls
:func:`check_disjoint` before it creates anything: local paths are resolved (``~``, symlinks,
``..``) and an output that is, contains or lies inside one of the command's inputs is refused;
s3/gs prefixes are compared the same way, as normalised URLs.

Before ``--overwrite`` removes or replaces anything, :func:`check_replaceable` proves that
the existing destination is an output of the same kind: a sortkd-cache store for ``copy``,
``sort`` and ``dump``, a training run directory for ``train``. Kinds are registered with
:func:`register_output_kind` (the run directory registers itself in
``sortkd_cache.pipelines._rundir``). Anything else (a file, a directory of other data) is
never removed.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sortkd_cache.errors import OutputError

__all__ = [
    "OUTPUT_KINDS",
    "check_disjoint",
    "check_replaceable",
    "is_store_output",
    "register_output_kind",
    "resolved",
]

#: kind name -> (what it is called in messages, proof that an existing location is one)
OUTPUT_KINDS: dict[str, tuple[str, Callable[[str, dict[str, Any] | None], bool]]] = {}


def register_output_kind(
    name: str, description: str
) -> Callable[
    [Callable[[str, dict[str, Any] | None], bool]], Callable[[str, dict[str, Any] | None], bool]
]:
    """Register ``proof(location, storage_options) -> bool`` for an output kind."""

    def deco(
        fn: Callable[[str, dict[str, Any] | None], bool],
    ) -> Callable[[str, dict[str, Any] | None], bool]:
        OUTPUT_KINDS[name] = (description, fn)
        return fn

    return deco


def resolved(location: str | os.PathLike[str]) -> str:
    """A comparable form: a local path with ``~``, symlinks and ``..`` resolved, or a URL
    without its trailing slashes (``file://`` URLs become paths)."""
    raw = os.fspath(location)
    if "://" in raw and not raw.lower().startswith("file://"):
        scheme, rest = raw.split("://", 1)
        return f"{scheme.lower()}://{rest.rstrip('/')}"
    if raw.lower().startswith("file://"):
        raw = raw[len("file://") :]
    return os.path.realpath(os.path.expanduser(raw))


def _inside(inner: str, outer: str) -> bool:
    sep = "/" if "://" in outer else os.sep
    return inner.startswith(outer.rstrip(sep) + sep)


def check_disjoint(
    output: str | os.PathLike[str],
    inputs: Iterable[tuple[str, str | os.PathLike[str] | None]],
    *,
    option: str = "--out",
) -> None:
    """Refuse an ``output`` that is, contains or lies inside one of ``inputs``.

    ``inputs``: (what the input is called, its location or None) pairs."""
    out = resolved(output)
    for name, location in inputs:
        if location is None:
            continue
        src = resolved(location)
        if out == src:
            how = "is"
        elif _inside(out, src):
            how = "lies inside"
        elif _inside(src, out):
            how = "contains"
        else:
            continue
        raise OutputError(
            f"{option} '{os.fspath(output)}' {how} the {name} '{os.fspath(location)}'; "
            "an output never overlaps an input: choose another path"
        )


def check_replaceable(
    location: str | os.PathLike[str],
    kind: str,
    *,
    option: str = "--out",
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Before ``--overwrite`` replaces ``location``: refuse unless it is absent, empty, or
    provably an output of ``kind`` (see :data:`OUTPUT_KINDS`)."""
    description, proof = OUTPUT_KINDS[kind]
    raw = os.fspath(location)
    if "://" not in raw or raw.lower().startswith("file://"):
        path = Path(resolved(raw))
        if not path.exists() or (path.is_dir() and not any(path.iterdir())):
            return
    if not proof(raw, storage_options):
        raise OutputError(
            f"{option} '{raw}' exists and is not {description}; --overwrite only replaces "
            f"{description}, so it is left as it is: choose another path"
        )


def _has_store_record(doc: bytes | None) -> bool:
    from sortkd_cache.store._meta import ATTRS_KEY

    if doc is None:
        return False
    try:
        parsed = json.loads(doc)
    except ValueError:
        return False
    attrs = parsed.get("attributes") if isinstance(parsed, dict) else None
    return isinstance(attrs, dict) and isinstance(attrs.get(ATTRS_KEY), dict)


@register_output_kind("store", "a sortkd-cache store")
def is_store_output(location: str, storage_options: dict[str, Any] | None = None) -> bool:
    """A store: its root ``zarr.json`` holds the provenance record, or (a copy or dump
    killed before its root was written) every key it holds is a key of the store layout."""
    from sortkd_cache.errors import StoreError
    from sortkd_cache.store._backend import ROOT_META, open_backend, parse_location
    from sortkd_cache.store._keys import list_keys, read_keys
    from sortkd_cache.store._schema import is_schema_key

    loc = parse_location(location)
    if loc.kind == "dir":
        root = Path(loc.path)
        if not root.is_dir():
            return False
        try:
            if _has_store_record((root / ROOT_META).read_bytes()):
                return True
        except OSError:
            pass
        files = [p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()]
        return all(is_schema_key(k) or k.startswith(".sortkd-lock") for k in files)
    if loc.kind == "zip":
        try:
            with zipfile.ZipFile(loc.path) as zf:
                return _has_store_record(zf.read(ROOT_META))
        except (OSError, KeyError, zipfile.BadZipFile):
            return False
    try:
        backend = open_backend(loc, "r" if loc.is_zip else "w", storage_options)
        if _has_store_record(read_keys(backend, loc, [ROOT_META])[0]):
            return True
        keys = list_keys(backend, loc)
    except (StoreError, OSError, ValueError):
        return False
    return keys is not None and all(is_schema_key(k) for k in keys)
