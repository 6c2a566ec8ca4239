"""A small dumped-and-sorted store shared by the store tests (built once per session)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SPEC = "fake:150:10:8"


@pytest.fixture(scope="session")
def base_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """150 samples in chunks of 32 (the last one short), 2 views, raw + sort. Read only."""
    from sortkd_cache.pipelines.dump import DumpConfig, dump
    from sortkd_cache.pipelines.sort import SortConfig, sort_store

    out = tmp_path_factory.mktemp("store") / "s.zarr"
    dump(
        DumpConfig(
            dataset=SPEC,
            teacher="resnet8",
            teacher_init="random",
            views=2,
            chunk_samples=32,
            out=str(out),
            progress=False,
            device="cpu",
        )
    )
    sort_store(SortConfig(store=str(out), method="sort", progress=False, num_workers=1))
    return out


@pytest.fixture
def store(base_store: Path, tmp_path: Path) -> Path:
    """A private copy of ``base_store`` to damage or modify."""
    return Path(shutil.copytree(base_store, tmp_path / "s.zarr"))
