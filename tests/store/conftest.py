"""A small dumped-and-sorted store shared by the store tests (built once per session)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sortkd_cache.testing import dump_and_sort

SPEC = "fake:150:10:8"


@pytest.fixture(scope="session")
def base_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """150 samples in chunks of 32 (the last one short), 2 views, raw + sort. Read only."""
    return dump_and_sort(tmp_path_factory.mktemp("store") / "s.zarr", SPEC, 32)


@pytest.fixture
def store(base_store: Path, tmp_path: Path) -> Path:
    """A private copy of ``base_store`` to damage or modify."""
    return Path(shutil.copytree(base_store, tmp_path / "s.zarr"))
