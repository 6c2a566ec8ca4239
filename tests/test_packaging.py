"""Packaging: the console script works outside the checkout, the generic folder names live
inside the ``sortkd_cache`` namespace, every package is listed, and ``--help`` is light."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sortkd_cache.testing import console_script

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(console_script())
MAPPED = {
    "sortkd_cache": "sortkd_cache",
    "cli": "sortkd_cache.cli",
    "pipelines": "sortkd_cache.pipelines",
}


def outside_env() -> dict[str, str]:
    """An environment that does not see the checkout: no PYTHONPATH, no progress bars."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["SORTKD_NO_PROGRESS"] = "1"
    return env


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=outside_env(), capture_output=True, text=True, timeout=120
    )


def test_console_script_works_from_outside_the_checkout(tmp_path: Path) -> None:
    assert SCRIPT.is_file(), f"{SCRIPT} missing: install the package (make setup)"
    r = run([str(SCRIPT), "--help"], tmp_path)
    assert r.returncode == 0, r.stderr
    for command in ("dump", "info"):
        assert command in r.stdout
    r = run([str(SCRIPT), "info", str(tmp_path / "none.zarr")], tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: "), r.stderr


def test_installed_modules_resolve_inside_the_namespace(tmp_path: Path) -> None:
    code = (
        "import json, sortkd_cache.cli, sortkd_cache.pipelines, sortkd_cache.pipelines.dump;"
        "print(json.dumps([sortkd_cache.cli.__file__, sortkd_cache.pipelines.dump.__file__]))"
    )
    r = run([sys.executable, "-c", code], tmp_path)
    assert r.returncode == 0, r.stderr
    cli_file, dump_file = (Path(p) for p in json.loads(r.stdout))
    assert cli_file.name == "__init__.py" and dump_file.name == "__init__.py"
    assert dump_file.parent.name == "dump"  # the dump command's package


def test_generic_names_are_not_top_level_packages(tmp_path: Path) -> None:
    for name in ("cli", "pipelines"):
        r = run([sys.executable, "-c", f"import {name}"], tmp_path)
        assert r.returncode != 0, f"'import {name}' worked: a generic top-level package leaked"
        assert f"ModuleNotFoundError: No module named '{name}'" in r.stderr, r.stderr


def test_every_package_folder_is_listed_in_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    package_dir = config.get("package-dir", {})
    for folder, package in MAPPED.items():
        if package != "sortkd_cache":
            assert package_dir.get(package) == folder, (package, package_dir)
        for init in sorted((REPO / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(REPO / folder)
            name = ".".join([package, *rel.parts])
            assert name in listed, f"{init.parent} is a package but {name} is not in pyproject"
    for name in listed:  # every listed package exists where package-dir says
        top = max((p for p in MAPPED.values() if name == p or name.startswith(p + ".")), key=len)
        folder = REPO / package_dir.get(top, top).replace(".", "/")
        rest = name[len(top) :].lstrip(".").split(".") if name != top else []
        assert (folder.joinpath(*rest) / "__init__.py").is_file(), name
    dangling = [
        p for p in listed if not any(p == v or p.startswith(v + ".") for v in MAPPED.values())
    ]
    assert not dangling, dangling


HELP_PROBE = r"""
import contextlib, io, json, sys, time
t0 = time.perf_counter()
from sortkd_cache.cli.main import all_commands, cli
out = {}
for name in [None, *sorted(all_commands())]:
    buf = io.StringIO()
    args = ([name] if name else []) + ["--help"]
    with contextlib.redirect_stdout(buf):
        try:
            cli.main(args, prog_name="sortkd-cache", standalone_mode=False)
        except SystemExit:
            pass
    out[name or "<group>"] = buf.getvalue()
heavy = sorted(m for m in ("torch", "zarr", "dask", "torchvision") if m in sys.modules)
print(json.dumps({"help": out, "heavy": heavy, "seconds": time.perf_counter() - t0}))
"""


def test_every_help_has_examples_and_imports_no_torch(tmp_path: Path) -> None:
    r = run([sys.executable, "-c", HELP_PROBE], tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    helps = report["help"]
    assert {"<group>", "dump", "info"} <= set(helps)
    for name, text in helps.items():
        if name == "<group>":
            assert "Typical session:" in text or "Examples:" in text, text
        else:
            assert "Examples:" in text, f"`sortkd-cache {name} --help` has no Examples section"
            assert f"sortkd-cache {name}" in text
    assert report["heavy"] == [], f"--help imported {report['heavy']}"
