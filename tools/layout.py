"""The installed layout of the package, for tools that read folders, not install mappings.

``cli/`` and ``pipelines/`` install as ``sortkd_cache.cli`` and ``sortkd_cache.pipelines``
(``[tool.setuptools] package-dir``). mypy and import-linter walk folders, so they are run
over a temporary directory whose ``sortkd_cache/`` links every entry of the library plus the
two mapped folders: they then speak of the names users import.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPED = ("cli", "pipelines")  # folders installed inside the sortkd_cache namespace


def installed_layout(tmp: Path) -> Path:
    """``tmp/sortkd_cache``: links to every entry of the library and the mapped folders."""
    pkg = tmp / "sortkd_cache"
    pkg.mkdir()
    for entry in (ROOT / "sortkd_cache").iterdir():
        if entry.name != "__pycache__":
            os.symlink(entry, pkg / entry.name)
    for folder in MAPPED:
        os.symlink(ROOT / folder, pkg / folder)
    return pkg
