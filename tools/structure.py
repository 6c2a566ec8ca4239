"""Print the structure measures of issue 20, from the source alone (no import of the package).

    python tools/structure.py            # the figures
    python tools/structure.py --verbose  # and what each figure counts

Measures:

* import cycles: strongly connected groups of modules in the import graph of the installed
  ``sortkd_cache`` package (``cli/`` and ``pipelines/`` mapped into it), every import counted
  (module level, inside functions, under ``TYPE_CHECKING``), as grimp counts them. ``from a
  import b`` is an import of ``a.b`` when that is a module, else of ``a``. grimp builds the
  graph when it is installed; otherwise the same rules are applied here with ``ast``.
* function-level imports: ``import`` statements inside a function body, and how many of them
  defer nothing heavy or optional. An import defers something heavy when it names a package of
  ``HEAVY``, or a module of the package that imports one of them at module level, directly or
  through other modules of the package (computed from the source, not listed here).
* functions over 60 lines.
* bare ``Any``: annotations (parameters and returns) of the library (``sortkd_cache/``) that
  are exactly ``Any``, as a share of all its annotations.
* ``is_sparse`` branches: ``if``/``elif``/``while``/conditional expressions whose test reads
  ``is_sparse``.
* README lines.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "sortkd_cache"
#: source folder -> the package it installs as
FOLDERS = {"sortkd_cache": PACKAGE, "cli": f"{PACKAGE}.cli", "pipelines": f"{PACKAGE}.pipelines"}
#: what a function-level import may defer (DESIGN/STYLE: heavy or optional dependencies)
HEAVY = (
    "torch",
    "torchvision",
    "zarr",
    "safetensors",
    "s3fs",
    "gcsfs",
    "dask.distributed",
    "distributed",
    "matplotlib",
    "timm",
)
MAX_LINES = 60


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    is_package: bool


@dataclass
class Report:
    cycles: list[list[str]] = field(default_factory=list)
    local_imports: list[str] = field(default_factory=list)
    local_light: list[str] = field(default_factory=list)
    long_functions: list[str] = field(default_factory=list)
    annotations: int = 0
    bare_any: list[str] = field(default_factory=list)
    sparse_branches: list[str] = field(default_factory=list)
    readme_lines: int = 0


def modules(root: Path = ROOT) -> dict[str, Module]:
    out: dict[str, Module] = {}
    for folder, pkg in FOLDERS.items():
        base = root / folder
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([pkg, *parts])
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            out[name] = Module(name, path, tree, path.name == "__init__.py")
    return out


def _resolve(mod: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = mod.name.split(".")
    base = parts if mod.is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _named(mod: Module, node: ast.AST, known: dict[str, Module]) -> Iterator[str]:
    """The package's module names one import statement names (before walking up to a known
    module)."""
    if isinstance(node, ast.Import):
        yield from (a.name for a in node.names if a.name.startswith(PACKAGE))
    elif isinstance(node, ast.ImportFrom):
        base = _resolve(mod, node)
        if base.startswith(PACKAGE):
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield sub if sub in known else base


def imports_of(mod: Module, known: dict[str, Module]) -> set[str]:
    """The package's modules that ``mod`` imports (see the module doc for the rules)."""
    found: set[str] = set()
    for node in ast.walk(mod.tree):
        for target in _named(mod, node, known):
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != mod.name:
                found.add(target)
    return found


def _graph_grimp(want: set[str]) -> dict[str, set[str]] | None:
    """grimp's graph, when grimp is installed and sees every module (an editable install
    maps ``cli/`` and ``pipelines/`` through an import hook that grimp does not follow)."""
    try:
        import grimp  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    try:
        g = grimp.build_graph(PACKAGE, cache_dir=None)
    except Exception:  # not importable here: fall back to ast
        return None
    if not want <= set(g.modules):
        return None
    return {m: set(g.find_modules_directly_imported_by(m)) for m in g.modules}


def import_graph(mods: dict[str, Module]) -> tuple[dict[str, set[str]], str]:
    graph = _graph_grimp(set(mods))
    if graph is not None:
        return graph, "grimp"
    return {name: imports_of(m, mods) for name, m in mods.items()}, "ast"


def _pop_group(stack: list[str], on: set[str], root: str) -> list[str]:
    """Tarjan's step: pop the strongly connected group whose root is ``root``."""
    group = []
    while True:
        w = stack.pop()
        on.discard(w)
        group.append(w)
        if w == root:
            return group


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            node, it = work[-1]
            nxt = next((w for w in it if w in graph), None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = _pop_group(stack, on, node)
                if len(group) > 1:
                    out.append(sorted(group))
    return out


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _is_heavy(name: str) -> bool:
    return any(name == h or name.startswith(h + ".") for h in HEAVY)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _module_level(nodes: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports that run when the module is imported (not in functions, classes' methods,
    or ``if TYPE_CHECKING:``)."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node):
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.ClassDef):
            for block in ("body", "orelse", "finalbody", "handlers"):
                for sub in getattr(node, block, []):
                    yield from _module_level(
                        sub.body if isinstance(sub, ast.ExceptHandler) else [sub]
                    )


def _targets(mod: Module, node: ast.Import | ast.ImportFrom, known: dict[str, Module]) -> list[str]:
    """What one import statement runs: external names as written, the package's modules with
    the packages above them (their ``__init__`` runs first)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = _resolve(mod, node)
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    out = []
    for name in names:
        parts = name.split(".")
        if parts[0] != PACKAGE:
            out.append(name)
            continue
        out += [
            ".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in known
        ]
    return out


def heavy_modules(mods: dict[str, Module]) -> set[str]:
    """The package's modules whose import loads a ``HEAVY`` package: directly or through other
    modules of the package, at module level."""
    edges = {
        name: {t for node in _module_level(m.tree.body) for t in _targets(m, node, mods)}
        for name, m in mods.items()
    }
    heavy = {name for name, targets in edges.items() if any(_is_heavy(t) for t in targets)}
    grew = True
    while grew:
        more = {name for name, targets in edges.items() if name not in heavy and targets & heavy}
        heavy |= more
        grew = bool(more)
    return heavy


def _measure_function(
    mod: Module,
    fn: ast.FunctionDef | ast.AsyncFunctionDef,
    r: Report,
    mods: dict[str, Module],
    heavy: set[str],
) -> None:
    where = f"{mod.path.relative_to(ROOT)}:{fn.lineno} {fn.name}"
    length = (fn.end_lineno or fn.lineno) - fn.lineno + 1
    if length > MAX_LINES:
        r.long_functions.append(f"{where} ({length} lines)")
    for node in ast.walk(fn):
        if node is not fn and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue  # counted in its own turn
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = _targets(mod, node, mods)
            line = f"{mod.path.relative_to(ROOT)}:{node.lineno} {names[-1]}"
            r.local_imports.append(line)
            if not any(_is_heavy(n) or n in heavy for n in names):
                r.local_light.append(line)
    if mod.path.is_relative_to(ROOT / "sortkd_cache"):
        args = fn.args
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        every += [a for a in (args.vararg, args.kwarg) if a is not None]
        notes = [a.annotation for a in every if a.annotation is not None]
        notes += [fn.returns] if fn.returns is not None else []
        r.annotations += len(notes)
        for note in notes:
            if (isinstance(note, ast.Name) and note.id == "Any") or (
                isinstance(note, ast.Constant) and note.value == "Any"
            ):
                r.bare_any.append(where)


def _reads_is_sparse(test: ast.AST) -> bool:
    for node in ast.walk(test):
        if isinstance(node, ast.Attribute) and node.attr == "is_sparse":
            return True
        if isinstance(node, ast.Name) and node.id == "is_sparse":
            return True
        if isinstance(node, ast.Constant) and node.value == "is_sparse":  # getattr(x, "...")
            return True
    return False


def measure(root: Path = ROOT) -> tuple[Report, str]:
    mods = modules(root)
    graph, how = import_graph(mods)
    r = Report(cycles=cycles(graph))
    heavy = heavy_modules(mods)
    for mod in mods.values():
        for fn in _functions(mod.tree):
            _measure_function(mod, fn, r, mods, heavy)
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.If | ast.IfExp | ast.While) and _reads_is_sparse(node.test):
                r.sparse_branches.append(f"{mod.path.relative_to(ROOT)}:{node.lineno}")
    readme = root / "README.md"
    r.readme_lines = len(readme.read_text(encoding="utf-8").splitlines()) if readme.exists() else 0
    return r, how


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", "-v", action="store_true", help="list what each counts")
    args = parser.parse_args(argv)
    r, how = measure()
    share = 100.0 * len(r.bare_any) / max(1, r.annotations)
    rows = [
        (f"import cycles ({how})", str(len(r.cycles)), r.cycles),
        (
            "function-level imports (not heavy/optional)",
            f"{len(r.local_imports)} ({len(r.local_light)})",
            r.local_light,
        ),
        (f"functions over {MAX_LINES} lines", str(len(r.long_functions)), r.long_functions),
        (
            "bare Any annotations in the library",
            f"{len(r.bare_any)} of {r.annotations} ({share:.1f}%)",
            r.bare_any,
        ),
        ("is_sparse branches", str(len(r.sparse_branches)), r.sparse_branches),
        ("README lines", str(r.readme_lines), []),
    ]
    for label, value, items in rows:
        print(f"{label:48} {value}")
        if args.verbose:
            for item in items:
                print(f"    {' -> '.join(item) if isinstance(item, list) else item}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
