"""sortkd-cache: run the teacher once, train every student from a sorted logit cache."""

from __future__ import annotations

from sortkd_cache._version import __version__
from sortkd_cache.store import CacheStore, create_store, open_store

__all__ = ["CacheStore", "__version__", "create_store", "open_store"]
