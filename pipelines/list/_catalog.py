"""What the registries hold: the names ``sortkd-cache list`` prints, each read from its registry.

The registries live with what they register (models, datasets, augmentation recipes, losses,
sort methods, URL schemes); each entry is described without its code (a model's factory and a
dataset's loader are lazy ``module:attr`` targets, a plugin's entry is named from its package's
metadata), so listing imports no model, no dataset module and no torch. ``--help`` stays
short: the help of ``--student``, ``--dataset`` and the like points at ``sortkd-cache list``
instead of repeating the names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from sortkd_cache import Registry

__all__ = ["KINDS", "catalog"]

#: Each kind's registry as (module, name), imported when listed (``--help`` imports none).
_REGISTRIES: dict[str, tuple[str, str]] = {
    "models": ("sortkd_cache.models", "MODELS"),
    "datasets": ("sortkd_cache.datasets", "DATASETS"),
    "augment": ("sortkd_cache.augment", "RECIPES"),
    "losses": ("sortkd_cache.losses", "LOSSES"),
    "methods": ("sortkd_cache.sorting", "METHODS"),
    "backends": ("sortkd_cache.store", "SCHEMES"),
}


def _first_line(text: str | None) -> str:
    return (text or "").strip().partition("\n")[0]


#: Each kind's one line about an entry, read from the entry itself (kinds whose entries
#: carry none are left out).
_SUMMARIES: dict[str, Callable[[Any], str]] = {
    "models": lambda info: str(info.description),
    "datasets": lambda kind: f"SPEC {kind.grammar}",
    "losses": lambda cls: _first_line(cls.__doc__),
    "methods": lambda method: str(method.summary),
}


def _registry(kind: str) -> Registry[Any]:
    module, name = _REGISTRIES[kind]
    found: Registry[Any] = getattr(importlib.import_module(module), name)
    return found


#: The kinds ``sortkd-cache list`` accepts, in the order it prints them.
KINDS: tuple[str, ...] = tuple(_REGISTRIES)


def catalog(kinds: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """``{kind: {"names": [...], "also": "...", "packages": {name: package}, "summaries":
    {name: line}}}`` for the given kinds (all when empty); ``packages`` names the installed
    package each plugin entry came from (read from the entry points' metadata: nothing is
    imported); ``summaries`` describe the entries already registered (a plugin's entry, not
    yet loaded, has none: loading it would import it)."""
    out: dict[str, dict[str, Any]] = {}
    for kind in kinds or KINDS:
        registry = _registry(kind)
        names = registry.names()
        packages = {n: p for n in names if (p := registry.origin(n)) is not None}
        summary = _SUMMARIES.get(kind)
        summaries = {
            n: summary(entry) for n, entry in sorted(registry.snapshot().items()) if summary
        }
        out[kind] = {
            "names": names, "also": registry.extra, "packages": packages, "summaries": summaries,
        }  # fmt: skip
    return out
