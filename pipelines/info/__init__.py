"""`sortkd-cache info`: a store's provenance, contents and statistics (:mod:`._stage`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sortkd_cache import lazy_names

if TYPE_CHECKING:
    from sortkd_cache.pipelines.info._stage import format_info, store_info

#: name -> the module that defines it
_NAMES = {
    "format_info": "._stage",
    "store_info": "._stage",
}
__all__ = ["format_info", "store_info"]

__getattr__ = lazy_names(__name__, _NAMES)
