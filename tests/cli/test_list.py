"""`sortkd-cache list`: every registry's names, read from the registry itself."""

from __future__ import annotations

import json

import pytest

from sortkd_cache._registry import Registry
from sortkd_cache.pipelines.list import KINDS, catalog
from sortkd_cache.testing import invoke


def _registries() -> dict[str, Registry[object]]:
    from sortkd_cache.augment import RECIPES
    from sortkd_cache.datasets import DATASETS
    from sortkd_cache.losses import LOSSES
    from sortkd_cache.models import MODELS
    from sortkd_cache.sorting import METHODS
    from sortkd_cache.store import SCHEMES

    return {
        "models": MODELS,
        "datasets": DATASETS,
        "augment": RECIPES,
        "losses": LOSSES,
        "methods": METHODS,
        "backends": SCHEMES,
    }


def test_the_catalog_covers_every_registry_and_reads_it() -> None:
    registries = _registries()
    assert set(KINDS) == set(registries)
    for kind, entry in catalog().items():
        assert entry["names"] == registries[kind].names() and entry["names"]


@pytest.mark.parametrize("kind", KINDS)
def test_list_prints_the_registry_names(kind: str) -> None:
    r = invoke("list", kind)
    assert r.exit_code == 0, r.output
    (line,) = r.output.splitlines()
    assert line.split()[0] == kind
    for name in _registries()[kind].names():
        assert name in line


def test_list_json_and_a_new_entry_appears() -> None:
    from sortkd_cache.sorting import METHODS

    METHODS.add("zz_test_method", METHODS.get("sort"))
    try:
        r = invoke("list", "methods", "--json")
        assert r.exit_code == 0, r.output
        assert "zz_test_method" in json.loads(r.output)["methods"]["names"]
    finally:
        METHODS._entries.pop("zz_test_method")


def test_list_unknown_kind_exits_2_with_the_error_last() -> None:
    r = invoke("list", "students")
    assert r.exit_code == 2
    assert "'students' is not one of" in r.output.strip().splitlines()[-1]
