"""mypy --strict over the library *and* the stages and CLI, as installed.

`cli/` and `pipelines/` install as `sortkd_cache.cli` and `sortkd_cache.pipelines`; mypy
reads folders, not install mappings, so this builds that layout from symlinks in a temporary
directory and type-checks the whole `sortkd_cache` package there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from layout import ROOT, installed_layout


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="sortkd-mypy-"))
    try:
        installed_layout(tmp)
        shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
        cmd = [
            sys.executable,
            "-m",
            "mypy",
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "-p",
            "sortkd_cache",
        ]
        return subprocess.run(cmd, cwd=tmp).returncode
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
