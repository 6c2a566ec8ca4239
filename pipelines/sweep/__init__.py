"""`sortkd-cache sweep`: many students on one pass over the data, in one sweep directory.

:mod:`._stage` runs it, :mod:`._grid` its members (:class:`SweepConfig`), :mod:`._dir` the
sweep directory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sortkd_cache import lazy_names

if TYPE_CHECKING:
    from sortkd_cache.pipelines.sweep._dir import describe_sweep
    from sortkd_cache.pipelines.sweep._grid import (
        READER_KEYS,
        SHARED_KEYS,
        STACK_MODES,
        SWEEP_KEYS,
        TEACHER_KEYS,
        MemberSpec,
        SweepConfig,
        SweepGrid,
        grid,
        member_name,
    )
    from sortkd_cache.pipelines.sweep._stage import Sweep, SweepResult, sweep

#: name -> the module that defines it
_NAMES = {
    "READER_KEYS": "._grid",
    "SWEEP_KEYS": "._grid",
    "TEACHER_KEYS": "._grid",
    "SHARED_KEYS": "._grid",
    "STACK_MODES": "._grid",
    "MemberSpec": "._grid",
    "SweepConfig": "._grid",
    "SweepGrid": "._grid",
    "grid": "._grid",
    "member_name": "._grid",
    "Sweep": "._stage",
    "SweepResult": "._stage",
    "describe_sweep": "._dir",
    "sweep": "._stage",
}
__all__ = [
    "MemberSpec",
    "READER_KEYS",
    "SHARED_KEYS",
    "STACK_MODES",
    "SWEEP_KEYS",
    "TEACHER_KEYS",
    "Sweep",
    "SweepConfig",
    "SweepGrid",
    "SweepResult",
    "describe_sweep",
    "grid",
    "member_name",
    "sweep",
]

__getattr__ = lazy_names(__name__, _NAMES)
