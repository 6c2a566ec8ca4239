"""The stages (dump, sort, train, share) composed from the library, plus experiment recipes.

Installed as ``sortkd_cache.pipelines``; import it by that name.
"""

from __future__ import annotations

__all__: list[str] = []
