"""Run import-linter's contracts (``[tool.importlinter]`` in pyproject.toml) over the tree,
laid out as installed (see :mod:`layout`), so that the contracts speak of the names users
import (``sortkd_cache.cli``, ``sortkd_cache.pipelines``), then look for the cycles the
``acyclic_siblings`` contract cannot see: those through a package's ``__init__`` (a package
that re-exports its modules, one of which imports the package back). Exit code: lint-imports',
or 1 for such a cycle.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from layout import ROOT, installed_layout


def package_cycles(package: str = "sortkd_cache") -> list[str]:
    """``a -> b -> ... -> a`` for each import of a package by one of its own modules (or of
    a module by its package) that closes a cycle, type-only imports included (``package``:
    an importable top-level package, this project's by default)."""
    import grimp

    graph = grimp.build_graph(package, exclude_type_checking_imports=False, cache_dir=None)
    found = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            related = module.startswith(imported + ".") or imported.startswith(module + ".")
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if related and back is not None:
                found.append(" -> ".join((module, *back)))
    return found


def main() -> int:
    from importlinter.cli import lint_imports

    with tempfile.TemporaryDirectory(prefix="sortkd-imports-") as tmp:
        installed_layout(Path(tmp))
        sys.path.insert(0, tmp)
        os.chdir(tmp)  # lint-imports puts the working directory first on sys.path
        code = int(lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True))
        cycles = package_cycles()
    for cycle in cycles:
        print(f"import cycle through a package's __init__: {cycle}")
    if not cycles:
        print("no import cycle through a package's __init__")
    return code or int(bool(cycles))


if __name__ == "__main__":
    sys.exit(main())
