"""What the registries hold: the names ``sortkd-cache list`` prints, each read from its registry.

The registries live with what they register (models, datasets, augmentation recipes, losses,
sort methods, URL schemes) and importing them imports torch, which ``--help`` must not do; so
the help of ``--student``, ``--dataset`` and the like points at ``sortkd-cache list`` instead
of repeating the names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sortkd_cache import Registry
from sortkd_cache.augment import RECIPES
from sortkd_cache.losses import LOSSES
from sortkd_cache.sorting import METHODS

__all__ = ["KINDS", "catalog"]


def _models() -> Registry[Any]:
    from sortkd_cache.models import MODELS

    return MODELS


def _datasets() -> Registry[Any]:
    from sortkd_cache.datasets import DATASETS

    return DATASETS


def _augment() -> Registry[Any]:
    return RECIPES


def _backends() -> Registry[Any]:
    from sortkd_cache.store import SCHEMES

    return SCHEMES


def _losses() -> Registry[Any]:
    return LOSSES


def _methods() -> Registry[Any]:
    return METHODS


_REGISTRIES: dict[str, Callable[[], Registry[Any]]] = {
    "models": _models,
    "datasets": _datasets,
    "augment": _augment,
    "losses": _losses,
    "methods": _methods,
    "backends": _backends,
}

#: The kinds ``sortkd-cache list`` accepts, in the order it prints them.
KINDS: tuple[str, ...] = tuple(_REGISTRIES)


def catalog(kinds: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """``{kind: {"names": [...], "also": "...", "packages": {name: package}}}`` for the given
    kinds (all when empty); ``packages`` names the installed package each plugin entry came
    from (read from the entry points' metadata: nothing is imported)."""
    out: dict[str, dict[str, Any]] = {}
    for kind in kinds or KINDS:
        registry = _REGISTRIES[kind]()
        names = registry.names()
        packages = {n: p for n in names if (p := registry.origin(n)) is not None}
        out[kind] = {"names": names, "also": registry.extra, "packages": packages}
    return out
