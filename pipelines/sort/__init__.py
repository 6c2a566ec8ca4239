"""`sortkd-cache sort`: the sort (or swap) of a store's raw logits, written beside them.

:mod:`._stage` runs it over the store's chunks on Dask (:mod:`._dask`), :mod:`._stats` the
rows it changed, :mod:`._config` its configuration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sortkd_cache import lazy_names

if TYPE_CHECKING:
    from sortkd_cache.pipelines.sort._config import SortConfig
    from sortkd_cache.pipelines.sort._stage import SortResult, sort_store, written_chunks

#: name -> the module that defines it
_NAMES = {
    "SortConfig": "._config",
    "SortResult": "._stage",
    "sort_store": "._stage",
    "written_chunks": "._stage",
}
__all__ = ["SortConfig", "SortResult", "sort_store", "written_chunks"]

__getattr__ = lazy_names(__name__, _NAMES)
