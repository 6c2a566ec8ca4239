"""`sortkd-cache run RECIPE`: teacher -> dump -> sort -> students, then a report
(:mod:`._stage`; the recipe itself is :mod:`sortkd_cache.pipelines.recipes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sortkd_cache import lazy_names

if TYPE_CHECKING:
    from sortkd_cache.pipelines.run._config import RunConfig
    from sortkd_cache.pipelines.run._stage import RunReport, StageOutcome, run_recipe

#: name -> the module that defines it
_NAMES = {
    "RunConfig": "._config",
    "RunReport": "._stage",
    "StageOutcome": "._stage",
    "run_recipe": "._stage",
}
__all__ = ["RunConfig", "RunReport", "StageOutcome", "run_recipe"]

__getattr__ = lazy_names(__name__, _NAMES)
