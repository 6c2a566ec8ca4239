"""`sortkd-cache report`: any runs side by side, in one self-contained report.

:mod:`._stage` builds and writes it from the runs :mod:`._runs` finds, grouped by
:mod:`._group`, with :mod:`._seed_table`'s statistics, :mod:`._words`' sentences,
:mod:`._plot`'s figures and :mod:`._render`'s markdown and HTML.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sortkd_cache import lazy_names

if TYPE_CHECKING:
    from sortkd_cache.pipelines.report._stage import (
        REPORT_FILES,
        build_report,
        find_runs,
        report,
        report_members,
        write_report,
    )

#: name -> the module that defines it
_NAMES = {
    "REPORT_FILES": "._stage",
    "build_report": "._stage",
    "find_runs": "._stage",
    "report": "._stage",
    "report_members": "._stage",
    "write_report": "._stage",
}
__all__ = ["REPORT_FILES", "build_report", "find_runs", "report", "report_members", "write_report"]

__getattr__ = lazy_names(__name__, _NAMES)
