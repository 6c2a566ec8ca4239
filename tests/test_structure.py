"""The structure holds: no import of another package's private module, no function over 60
lines, and import-linter's contracts (layers cli -> pipelines -> library, no cycles; see
``[tool.importlinter]`` in pyproject.toml) kept. ruff checks complexity (C901, PLR0912,
PLR0915) in ``make lint``."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
#: folder -> the package it installs as (see [tool.setuptools] package-dir)
PACKAGES = {
    "sortkd_cache": "sortkd_cache",
    "cli": "sortkd_cache.cli",
    "pipelines": "sortkd_cache.pipelines",
}
#: the layers above the library: the library's own private modules are not theirs
LAYERS = ("sortkd_cache.cli", "sortkd_cache.pipelines")
MAX_FUNCTION_LINES = 60


def _modules() -> Iterator[tuple[str, Path]]:
    """(module name, file) of every product module."""
    for folder, package in PACKAGES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join([package, *parts]), path


def _is_module(name: str) -> bool:
    """Whether ``name`` is a product module or package (not a name defined inside one)."""
    for folder, package in PACKAGES.items():
        if name == package or name.startswith(package + "."):
            rest = name[len(package) :].lstrip(".").split(".") if name != package else []
            base = (REPO / folder).joinpath(*rest)
            if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
                return True
    return False


def _absolute(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The module an ImportFrom names, relative imports resolved against ``importer``."""
    if node.level == 0:
        return node.module or ""
    parts = importer.split(".") if is_package else importer.split(".")[:-1]
    base = parts[: len(parts) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _imported(
    tree: ast.AST, importer: str = "", is_package: bool = False
) -> Iterator[tuple[int, str]]:
    """(line, module) of every import of a product module, at any depth (relative imports
    resolved against ``importer``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(importer, is_package, node)
            yield node.lineno, module
            for alias in node.names:
                if _is_module(f"{module}.{alias.name}"):
                    yield node.lineno, f"{module}.{alias.name}"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def foreign_private_imports(
    importer: str, tree: ast.AST, is_package: bool = False
) -> list[tuple[int, str]]:
    """(line, module) of each import in ``importer``'s ``tree`` of a private module (a name
    part ``_x``) that lives outside ``importer``'s own package. The stages and the CLI are
    outside the library although they install inside its namespace."""
    out = []
    for line, name in _imported(tree, importer, is_package):
        parts = name.split(".")
        private = [i for i, part in enumerate(parts) if _private(part)]
        if not name.startswith("sortkd_cache") or not private:
            continue
        owner = ".".join(parts[: private[0]])
        inside = importer == owner or importer.startswith(owner + ".")
        if owner == "sortkd_cache" and importer.startswith(LAYERS):
            inside = False
        if not inside:
            out.append((line, name))
    return out


def private_import_violations() -> set[tuple[str, str]]:
    """(file, module) of every import of another package's private module."""
    out = set()
    for importer, path in _modules():
        tree = ast.parse(path.read_text(), str(path))
        found = foreign_private_imports(importer, tree, path.name == "__init__.py")
        out |= {(path.relative_to(REPO).as_posix(), name) for _, name in found}
    return out


def long_functions(limit: int = MAX_FUNCTION_LINES) -> list[str]:
    out = []
    for _, path in _modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > limit:
                    out.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.name} ({lines})")
    return out


def test_no_import_of_another_packages_private_module() -> None:
    found = private_import_violations()
    listed = "\n".join(f"{path}: {name}" for path, name in sorted(found))
    assert not found, f"import the package's public name instead:\n{listed}"


@pytest.mark.parametrize(
    ("importer", "code", "bad"),
    [
        ("sortkd_cache.pipelines.dump", "from sortkd_cache.store._meta import X", True),
        ("sortkd_cache.pipelines.dump", "import sortkd_cache.store._meta", True),
        ("sortkd_cache.pipelines.dump", "from sortkd_cache.store import _meta", True),
        ("sortkd_cache.sparse._spec", "from sortkd_cache.store._meta import X", True),
        ("sortkd_cache.pipelines.dump", "from sortkd_cache._version import v", True),
        ("sortkd_cache.losses.kd", "from sortkd_cache._registry import Registry", False),
        ("sortkd_cache.store._copy", "from sortkd_cache.store._meta import X", False),
        ("sortkd_cache.pipelines.dump", "from sortkd_cache.store import open_store", False),
        (
            "sortkd_cache.pipelines.dump._stage",
            "from sortkd_cache.pipelines.dump._store import x",
            False,
        ),
        ("sortkd_cache.pipelines.dump._stage", "from ._store import x", False),
        (
            "sortkd_cache.pipelines.dump._stage",
            "from sortkd_cache.pipelines.common import x",
            False,
        ),
        (
            "sortkd_cache.pipelines.train._data",
            "from sortkd_cache.pipelines.dump._stage import x",
            True,
        ),
        ("sortkd_cache.pipelines.train._data", "from ..dump._stage import x", True),
        ("sortkd_cache.pipelines.train._data", "from sortkd_cache.pipelines.dump import x", False),
        (
            "sortkd_cache.pipelines.run._stage",
            "from sortkd_cache.pipelines.sweep import _grid",
            True,
        ),
        ("sortkd_cache.cli.main", "from sortkd_cache.pipelines.train._config import x", True),
        ("sortkd_cache.cli.main", "from sortkd_cache.pipelines.train import TrainConfig", False),
        ("sortkd_cache.sparse._spec", "from ..store._meta import X", True),
        ("sortkd_cache.store._copy", "from . import _meta", False),
    ],
)
def test_the_private_module_check_flags_what_it_must(importer: str, code: str, bad: bool) -> None:
    assert bool(foreign_private_imports(importer, ast.parse(code))) == bad


#: The one module that imports zarr's internals (``zarr.core``), so a zarr release that moves
#: one is a change there alone.
ZARR_COMPAT = "sortkd_cache.store._zarr_compat"


def zarr_core_imports() -> list[str]:
    """``module: name`` of every ``zarr.core`` import outside :data:`ZARR_COMPAT`, in the
    product, the tests, the benchmarks and the tools (at any depth, lazy ones included)."""
    files = [(m, p) for m, p in _modules()]
    for folder in ("tests", "benchmarks", "tools", "examples"):
        files += [(str(p.relative_to(REPO)), p) for p in sorted((REPO / folder).rglob("*.py"))]
    out = []
    for module, path in files:
        if module == ZARR_COMPAT:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            out += [
                f"{module}: {n}" for n in names if n == "zarr.core" or n.startswith("zarr.core.")
            ]
    return out


def test_zarr_internals_are_imported_in_the_compat_module_only() -> None:
    found = zarr_core_imports()
    assert found == [], f"import these from {ZARR_COMPAT}:\n" + "\n".join(found)


def test_no_function_over_60_lines() -> None:
    found = long_functions()
    assert found == [], "split these into short steps:\n" + "\n".join(found)


def test_import_contracts_are_kept() -> None:
    pytest.importorskip("importlinter", reason="pip install the [test] extra")
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "lint_imports.py")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_the_package_cycle_check_finds_a_planted_cycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tools/lint_imports.py's own check (the cycles import-linter cannot see): a package
    whose ``__init__`` imports a module that imports the package back is found; the same
    package without the back edge is clean."""
    pytest.importorskip("grimp", reason="pip install the [test] extra")
    monkeypatch.syspath_prepend(str(REPO / "tools"))
    monkeypatch.syspath_prepend(str(tmp_path))
    from lint_imports import package_cycles

    for name, back in (("planted_cycle", "import planted_cycle\n"), ("planted_clean", "")):
        pkg = tmp_path / name
        pkg.mkdir()
        (pkg / "__init__.py").write_text(f"from {name}.a import x\n")
        (pkg / "a.py").write_text(f"{back}x = 1\n")
    cycles = package_cycles("planted_cycle")
    assert cycles and all("planted_cycle.a" in c for c in cycles), cycles
    assert package_cycles("planted_clean") == []


def test_every_top_level_module_sits_in_a_layer() -> None:
    """A module in no layer is held by no layer contract: each new one must be placed."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    for contract, folder, extra in (
        ("layers", "sortkd_cache", {"cli", "pipelines"}),
        ("commands", "pipelines", set()),
    ):
        missing = sorted((_children(folder) | extra) - _placed(config, contract))
        assert not missing, (
            f"place these in the [tool.importlinter] contract {contract!r}: {missing}"
        )


def _placed(config: dict[str, Any], contract: str) -> set[str]:
    """The modules the layers contract ``contract`` names."""
    (layers,) = [c["layers"] for c in config["contracts"] if c["id"] == contract]
    return {name.strip(" ()") for layer in layers for name in layer.replace(":", "|").split("|")}


def _children(folder: str) -> set[str]:
    """The modules and packages directly in ``folder`` (``__init__`` aside)."""
    tops = {p.stem for p in (REPO / folder).iterdir() if p.suffix == ".py"}
    tops |= {p.name for p in (REPO / folder).iterdir() if (p / "__init__.py").is_file()}
    return tops - {"__init__"}


#: the shared subpackage of the pipelines: every command may import its modules
COMMON = "sortkd_cache.pipelines.common"


def crosses_a_command(importer: str, name: str) -> bool:
    """Whether module ``importer`` importing module ``name`` reaches into a command's private
    module (``sortkd_cache.pipelines.<command>._x``) from outside that command's subpackage."""
    parts = name.split(".")
    if len(parts) < 4 or parts[:2] != ["sortkd_cache", "pipelines"]:
        return False
    stage = ".".join(parts[:3])
    inside = importer == stage or importer.startswith(stage + ".")
    return stage != COMMON and _private(parts[3]) and not inside


def stage_private_imports() -> list[str]:
    """``file:line: module`` of every import, anywhere in the product (the CLI, the pipelines,
    the library; at any depth, lazy ones included), of a command's private module from outside
    that command's subpackage. What two commands share lives in :data:`COMMON` (or lower, in
    the library), or is imported through the command's public ``__init__``."""
    out = []
    for importer, path in _modules():
        tree = ast.parse(path.read_text(), str(path))
        for line, name in _imported(tree, importer, path.name == "__init__.py"):
            if crosses_a_command(importer, name):
                out.append(f"{path.relative_to(REPO)}:{line}: {name}")
    return out


@pytest.mark.parametrize(
    ("importer", "name", "bad"),
    [
        ("sortkd_cache.pipelines.train._data", "sortkd_cache.pipelines.dump._stage", True),
        ("sortkd_cache.pipelines.sweep._stage", "sortkd_cache.pipelines.train._session", True),
        ("sortkd_cache.pipelines.configs", "sortkd_cache.pipelines.train._config", True),
        ("sortkd_cache.cli._cmd_sort", "sortkd_cache.pipelines.sort._config", True),
        ("sortkd_cache.pipelines.common.helpers", "sortkd_cache.pipelines.dump._store", True),
        ("sortkd_cache.pipelines.train._data", "sortkd_cache.pipelines.train._setup", False),
        ("sortkd_cache.pipelines.train", "sortkd_cache.pipelines.train._config", False),
        ("sortkd_cache.pipelines.sweep._stage", "sortkd_cache.pipelines.train", False),
        ("sortkd_cache.pipelines.dump._stage", "sortkd_cache.pipelines.common.helpers", False),
    ],
)
def test_the_command_check_flags_what_it_must(importer: str, name: str, bad: bool) -> None:
    assert crosses_a_command(importer, name) == bad


def test_no_command_imports_another_commands_private_module() -> None:
    found = stage_private_imports()
    assert found == [], "import the command's public names (its __init__) instead:\n" + "\n".join(
        found
    )


def test_every_command_has_its_subpackage() -> None:
    """The pipelines read like the CLI: each command's code is one subpackage (``verify`` and
    ``copy`` too), beside ``common`` and the recipes."""
    from sortkd_cache.cli.main import COMMANDS

    commands = set(COMMANDS)
    assert len(commands) >= 10, sorted(commands)
    assert commands <= _children("pipelines"), sorted(commands - _children("pipelines"))


def _structure_report() -> Any:
    spec = importlib.util.spec_from_file_location("structure", REPO / "tools" / "structure.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["structure"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    report, _ = module.measure(REPO)
    return report


def test_function_level_imports_and_bare_any_stay_within_issue_20s_bounds() -> None:
    """At most 80 imports inside functions (each should defer a heavy or optional dependency:
    ``tools/structure.py -v`` lists them) and bare ``Any`` on at most 2% of the library's
    annotations."""
    r = _structure_report()
    assert len(r.local_imports) <= 80, "\n".join(r.local_light)
    share = len(r.bare_any) / max(1, r.annotations)
    assert share <= 0.02, f"bare Any on {share:.1%} of the annotations: {r.bare_any}"


#: test folders laid out by theme on purpose (docs/development.md, "Tests"): hostile input
#: across every command, the example plugin across every registry, and the store's backends
#: against local object-store servers
TEST_THEMES = {"hostile", "plugins", "store/sharing"}


def test_the_test_folders_mirror_the_packages() -> None:
    """``tests/X/`` tests the package folder ``X`` (``sortkd_cache/X``, ``cli``,
    ``pipelines/CMD``), but for the folders by theme."""
    homes = [REPO / "sortkd_cache", REPO]
    stray = []
    for folder in sorted((REPO / "tests").rglob("*")):
        rel = folder.relative_to(REPO / "tests").as_posix()
        if not folder.is_dir() or "__pycache__" in rel or rel in TEST_THEMES:
            continue
        if not any((home / rel / "__init__.py").is_file() for home in homes):
            stray.append(rel)
    assert not stray, f"test folders that mirror no package: {stray}"
    loose = [p.name for p in (REPO / "tests" / "pipelines").glob("test_*.py")]
    assert not loose, f"tests/pipelines/{loose}: a stage's tests go in tests/pipelines/CMD/"
