"""Runs made with the real ``train`` pipeline for the report tests (a tiny student on the
session's small fake store: a few seconds in all)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sortkd_cache.testing import dump_and_sort

from ...conftest import SMALL, train_run

__all__ = ["SMALL", "subset", "train_run"]


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory, small_store: Path) -> Path:
    """runs/<loss>-<kind>-<seed>: CE, KD raw and KD sort, seeds 0, 1 and 2."""
    root = tmp_path_factory.mktemp("report") / "runs"
    for loss, kind in (("ce", "raw"), ("kd", "raw"), ("kd", "sort")):
        for seed in (0, 1, 2):
            train_run(root / f"{loss}-{kind}-{seed}", small_store, loss, seed, kind)
    return root


@pytest.fixture(scope="session")
def other_cache_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """KD raw, seeds 3 and 4, from a second store (another dump: another store id)."""
    root = tmp_path_factory.mktemp("report2")
    store = dump_and_sort(root / "other.zarr", "fake:96:10:8", 48, seed=1)
    for seed in (3, 4):
        train_run(root / "runs" / f"kd-raw-{seed}", store, "kd", seed)
    return root / "runs"


def subset(runs: Path, dest: Path, names: list[str]) -> Path:
    """A folder holding copies of the named runs."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copytree(runs / name, dest / name)
    return dest
