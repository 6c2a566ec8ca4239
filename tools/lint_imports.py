"""Run import-linter's contracts (``[tool.importlinter]`` in pyproject.toml) over the tree,
laid out as installed (see :mod:`layout`), so that the contracts speak of the names users
import (``sortkd_cache.cli``, ``sortkd_cache.pipelines``). Exit code: lint-imports'.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from layout import ROOT, installed_layout


def main() -> int:
    from importlinter.cli import lint_imports

    with tempfile.TemporaryDirectory(prefix="sortkd-imports-") as tmp:
        installed_layout(Path(tmp))
        sys.path.insert(0, tmp)
        os.chdir(tmp)  # lint-imports puts the working directory first on sys.path
        return int(lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True))


if __name__ == "__main__":
    sys.exit(main())
