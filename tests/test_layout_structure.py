"""No module outside ``store/`` and the layout objects tells dense logits from sparse ones: the
store's layout (:class:`sortkd_cache.store.LogitsLayout`) and its training part
(:class:`sortkd_cache.data.LayoutTraining`) answer every question that differs."""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("sortkd_cache", "pipelines", "cli")
#: the layout objects: the store (its formats), each layout's training part and rows types
LAYOUT_MODULES = (
    "sortkd_cache/store/",
    "sortkd_cache/sparse/",
    "sortkd_cache/data/_layouts.py",
    "sortkd_cache/data/_dense.py",
    "sortkd_cache/data/_sparse.py",
    "sortkd_cache/data/_sampled.py",
    "sortkd_cache/data/_quant.py",
    "sortkd_cache/data/_packed.py",
    "sortkd_cache/losses/_rows.py",
    "sortkd_cache/losses/_sparse_rows.py",
    "sortkd_cache/losses/_sparse_kd.py",
    "sortkd_cache/losses/_sampled_rows.py",
)
#: types that are one layout's own: testing for one is telling the layouts apart
LAYOUT_TYPES = {
    "DenseLayout",
    "SparseLayout",
    "TopKLayout",
    "SampledLayout",
    "QuantLayout",
    "SparseRows",
    "SampledRows",
    "QuantRows",
    "SparseTeacher",
    "SampledTeacher",
    "SparseLogitsArray",
    "RowsGroupArray",
    "LogitsArray",
    "DenseRows",
    "ViewLogits",
    "SparseViewSource",
    "SampledViewSource",
    "QuantViewSource",
    "PackedViewSource",
}


def _chain(node: ast.AST) -> list[str]:
    """``a.b.c`` as ``["a", "b", "c"]`` (calls and subscripts in between are skipped)."""
    out: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            out.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Call | ast.Subscript):
            node = node.func if isinstance(node, ast.Call) else node.value
        elif isinstance(node, ast.Name):
            out.append(node.id)
            return out[::-1]
        else:
            return out[::-1]


def _names(node: ast.AST) -> set[str]:
    """The type names in an isinstance/issubclass second argument."""
    elts = node.elts if isinstance(node, ast.Tuple) else [node]
    return {(_chain(e) or [""])[-1] for e in elts}


def _layout_test(node: ast.AST, other: ast.AST) -> bool:
    """Whether comparing ``node`` with ``other`` reads which layout a store has:
    ``layout.spec`` or ``layout.name`` against anything, ``meta.sparse`` against None."""
    chain = _chain(node)
    if not chain:
        return False
    last, before = chain[-1], chain[:-1]
    is_none = isinstance(other, ast.Constant) and other.value is None
    return (last in ("spec", "name") and any("layout" in p for p in before)) or (
        last == "sparse" and bool(before) and before[-1] == "meta" and is_none
    )


def branches(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, what) of every place ``tree`` tells one logits layout from another."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            fn, args = node.func.id, node.args
            if fn in ("isinstance", "issubclass") and len(args) == 2:
                hit = _names(args[1]) & LAYOUT_TYPES
                if hit:
                    yield node.lineno, f"{fn}(..., {sorted(hit)[0]})"
            if fn == "type" and args and any("layout" in p for p in _chain(args[0])):
                yield node.lineno, "type(...layout)"
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            pairs = itertools.pairwise(sides)
            if any(_layout_test(a, b) or _layout_test(b, a) for a, b in pairs):
                yield node.lineno, ast.unparse(node)
        elif isinstance(node, ast.Attribute) and node.attr == "is_sparse":
            yield node.lineno, ast.unparse(node)


def _product_files() -> Iterator[tuple[str, Path]]:
    for folder in FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if not rel.startswith(LAYOUT_MODULES):
                yield rel, path


def test_no_module_outside_the_layouts_branches_on_dense_or_sparse() -> None:
    found = [
        f"{rel}:{line}: {what}"
        for rel, path in _product_files()
        for line, what in branches(ast.parse(path.read_text(), str(path)))
    ]
    assert not found, "ask store.layout (or its training part) instead:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        "if store.layout.spec is None: pass",
        "x = 1 if meta.sparse is not None else 2",
        "ok = store.meta.sparse is None",
        "if store.is_sparse: pass",
        "source = {DenseLayout: 1}[type(store.layout)]",
        "if isinstance(rows, (np.ndarray, SparseRows)): pass",
        "if not isinstance(t, sk.losses.SparseTeacher): pass",
        "if self._layout.name == 'dense': pass",
    ],
)
def test_the_check_sees_each_way_of_branching(source: str) -> None:
    assert list(branches(ast.parse(source)))


def test_the_check_leaves_other_code_alone() -> None:
    source = (
        "if s.sparse is None and spec is not None and isinstance(x, torch.Tensor)"
        " and old.meta.sparse != new.meta.sparse: pass"
    )
    assert not list(branches(ast.parse(source)))
