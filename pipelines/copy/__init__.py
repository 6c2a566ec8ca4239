"""`sortkd-cache copy`: a store copied and verified, or re-sliced (``--topk``, ``--sample``,
``--views``, ``--dtype``).

:mod:`._stage` copies (a plain copy imports no torch), :mod:`._derive` re-slices,
:mod:`._config` is :class:`DeriveConfig`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sortkd_cache import lazy_names

if TYPE_CHECKING:
    from sortkd_cache.pipelines.copy._config import DeriveConfig
    from sortkd_cache.pipelines.copy._derive import derive_store, parse_views
    from sortkd_cache.pipelines.copy._stage import copy, format_copy

#: name -> the module that defines it
_NAMES = {
    "DeriveConfig": "._config",
    "copy": "._stage",
    "format_copy": "._stage",
    "derive_store": "._derive",
    "parse_views": "._derive",
}
__all__ = ["DeriveConfig", "copy", "derive_store", "format_copy", "parse_views"]

__getattr__ = lazy_names(__name__, _NAMES)
