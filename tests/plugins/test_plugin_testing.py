"""``sortkd_cache.testing`` serves a plugin's own tests: the example package's tests
(``examples/sortkd-plugin-example/tests``), written with it, pass with the package installed
(in this process, and for the console scripts they start, through ``PYTHONPATH``)."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import EXAMPLE, PluginSite

TESTS = EXAMPLE / "tests" / "test_with_sortkd_testing.py"


def _example_tests() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sortkd_plugin_example_tests", TESTS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NAMES = [n for n, f in inspect.getmembers(_example_tests(), inspect.isfunction)
         if n.startswith("test_")]  # fmt: skip


def test_the_example_has_tests() -> None:
    assert len(NAMES) >= 2, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_the_examples_own_test_passes(
    installed: PluginSite, tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", installed.env()["PYTHONPATH"])
    getattr(_example_tests(), name)(tmp_path)
