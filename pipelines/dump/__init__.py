"""`sortkd-cache dump`: run the teacher once over V augmented views per sample, into a store.

:mod:`._stage` runs it (units, writer, finalize), :mod:`._config` is its configuration,
:mod:`._store` the output store, :mod:`._units` the writing side, :mod:`._decode` the
teacher's inputs made ahead by workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sortkd_cache import lazy_names

if TYPE_CHECKING:
    from sortkd_cache.models import teacher_logits
    from sortkd_cache.pipelines.common.helpers import clean_partial_files
    from sortkd_cache.pipelines.dump._config import DumpConfig, recipe_keys
    from sortkd_cache.pipelines.dump._stage import DumpResult, dump, finalize, run_units
    from sortkd_cache.pipelines.dump._store import open_or_create

#: name -> the module that defines it
_NAMES = {
    "DumpConfig": "._config",
    "recipe_keys": "._config",
    "DumpResult": "._stage",
    "dump": "._stage",
    "finalize": "._stage",
    "open_or_create": "._store",
    "run_units": "._stage",
    "clean_partial_files": "..common.helpers",
    "teacher_logits": "...models",
}
__all__ = [
    "DumpConfig",
    "DumpResult",
    "clean_partial_files",
    "dump",
    "finalize",
    "open_or_create",
    "recipe_keys",
    "run_units",
    "teacher_logits",
]

__getattr__ = lazy_names(__name__, _NAMES)
