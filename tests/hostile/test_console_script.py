"""Issue 21 item 8: the suite finds the console script from the running interpreter's
environment, not from a ``.venv`` beside the checkout: a copy of the tests' conftest in a
folder with no ``.venv`` finds the same script, which runs and answers a bad path with exit 2
and one line; a script that is not installed is named in one error."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from ..conftest import cli_env, console_script

PROBE = (
    "import importlib.util, sys;"
    "spec = importlib.util.spec_from_file_location('c', sys.argv[1]);"
    "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); print(m.CLI)"
)


def test_console_script_comes_from_the_interpreter_not_the_checkout(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "tests"
    elsewhere.mkdir(parents=True)
    shutil.copy(Path(__file__).parents[1] / "conftest.py", elsewhere / "conftest.py")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    env = {k: v for k, v in cli_env().items() if k != "PYTHONPATH"}
    found = subprocess.run(
        [sys.executable, "-c", PROBE, str(elsewhere / "conftest.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    script = Path(found.stdout.strip())
    homes = {Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))}
    assert script.parent in homes and script.name.startswith("sortkd-cache"), script
    assert str(script) == console_script()
    ran = subprocess.run(
        [str(script), "info", str(tmp_path / "none.zarr")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    lines = ran.stderr.strip().splitlines()
    assert ran.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), ran.stderr
    assert "none.zarr" in lines[0]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_missing_console_script_is_named() -> None:
    with pytest.raises(RuntimeError, match="console script 'sortkd-cache-nope' not found"):
        console_script("sortkd-cache-nope")
