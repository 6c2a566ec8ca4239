"""`sortkd-cache list`: what the registries hold (:mod:`._catalog`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sortkd_cache import lazy_names

if TYPE_CHECKING:
    from sortkd_cache.pipelines.list._catalog import KINDS, catalog

#: name -> the module that defines it
_NAMES = {
    "KINDS": "._catalog",
    "catalog": "._catalog",
}
__all__ = ["KINDS", "catalog"]

__getattr__ = lazy_names(__name__, _NAMES)
