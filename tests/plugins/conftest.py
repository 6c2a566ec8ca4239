"""The example plugin package (examples/sortkd-plugin-example), installed without pip.

An installed distribution is, to ``importlib.metadata``, a ``NAME-VERSION.dist-info`` folder
on ``sys.path`` holding ``METADATA`` and ``entry_points.txt``. ``plugin_site`` writes that
folder into a temporary directory, with the entry points read from the example's own
``pyproject.toml``, and puts it beside the package's ``src/``: what ``pip install`` would
leave, with nothing downloaded or built. Subprocesses get it through ``PYTHONPATH``; in-process
tests through ``sys.path`` (``installed``), with every registry put back afterwards.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the tomli backport
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "sortkd-plugin-example"


@dataclass(frozen=True)
class PluginSite:
    """Where the example plugin is "installed": its source and its distribution metadata."""

    paths: tuple[str, ...]
    entry_points: dict[str, dict[str, str]]  # group -> {name: "module:attr"}

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment whose Python sees the plugin installed."""
        env = dict(os.environ if base is None else base)
        env["PYTHONPATH"] = os.pathsep.join([*self.paths, env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
        env["SORTKD_NO_PROGRESS"] = "1"
        env.pop("SORTKD_DEBUG", None)
        return env


def write_distribution(
    site: Path, name: str, version: str, groups: dict[str, dict[str, str]]
) -> None:
    """A ``.dist-info`` folder in ``site`` declaring ``groups`` of entry points."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, entries in groups.items():
        lines.append(f"[{group}]")
        lines += [f"{k} = {v}" for k, v in entries.items()]
        lines.append("")
    (info / "entry_points.txt").write_text("\n".join(lines))


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> PluginSite:
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    groups: dict[str, dict[str, str]] = project["entry-points"]
    site = tmp_path_factory.mktemp("plugin-site")
    write_distribution(site, project["name"], project["version"], groups)
    return PluginSite((str(EXAMPLE / "src"), str(site)), groups)


@pytest.fixture
def installed(plugin_site: PluginSite, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginSite]:
    """The plugin visible to this process while the test runs; the registries it fills are
    restored afterwards."""
    from sortkd_cache.datasets import DATASETS
    from sortkd_cache.losses import LOSSES
    from sortkd_cache.models import MODELS
    from sortkd_cache.sorting import METHODS
    from sortkd_cache.store import SCHEMES

    registries = (MODELS, LOSSES, DATASETS, METHODS, SCHEMES)
    saved = [r.snapshot() for r in registries]
    for path in reversed(plugin_site.paths):
        monkeypatch.syspath_prepend(path)
    yield plugin_site
    for registry, entries in zip(registries, saved, strict=True):
        registry.restore(entries)
    monkeypatch.undo()
    for name in [m for m in sys.modules if m.startswith("sortkd_plugin_example")]:
        del sys.modules[name]
