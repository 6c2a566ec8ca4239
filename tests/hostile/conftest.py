"""Hostile inputs: what a careless or malicious user types, and what a crafted store holds.

Every test asserts the exit code, the single ``error:`` line
(:func:`sortkd_cache.testing.one_error_line`), and that the inputs (stores,
run directories, other files) are byte-identical afterwards (:func:`tree_digest`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sortkd_cache.testing import dump_and_sort

SPEC = "fake:64:4:8"


@pytest.fixture(scope="session")
def hostile_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64 samples in chunks of 16, 2 views, 4 classes, raw + sort. Read only."""
    return dump_and_sort(tmp_path_factory.mktemp("hostile") / "s.zarr", SPEC, 16)


@pytest.fixture
def store(hostile_base: Path, tmp_path: Path) -> Path:
    """A private copy of the hostile base store, to damage or attack."""
    return Path(shutil.copytree(hostile_base, tmp_path / "s.zarr"))


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (or of ``root`` itself when it is a file), by
    relative path; symlinks are recorded as their target."""
    if root.is_file():
        return {".": hashlib.sha256(root.read_bytes()).hexdigest()}
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = f"-> {path.readlink()}"
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def edit_json(path: Path, edit: Callable[[dict[str, Any]], None], *, reseal: bool) -> None:
    """Edit a node's ``zarr.json``. ``reseal``: recompute its metadata checksum, as a hostile
    writer would (the checks behind the checksum must still catch the edit)."""
    from sortkd_cache.store._integrity import DIGEST_KEY, node_digest

    doc = json.loads(path.read_text())
    edit(doc)
    if reseal:
        doc.setdefault("attributes", {})[DIGEST_KEY] = node_digest(doc)
    path.write_text(json.dumps(doc, indent=2))
