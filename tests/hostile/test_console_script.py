"""Issue 21 item 8: the suite finds the console script from the running interpreter's
environment, not from a ``.venv`` beside the checkout: ``sortkd_cache.testing`` asked from a
folder with no ``.venv`` finds the same script, which runs and answers a bad path with exit 2
and one line; a script that is not installed is named in one error."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from sortkd_cache.testing import cli_env, console_script, one_error_line

PROBE = "from sortkd_cache.testing import console_script; print(console_script())"


def test_console_script_comes_from_the_interpreter_not_the_checkout(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    env = {k: v for k, v in cli_env().items() if k != "PYTHONPATH"}
    found = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path / "elsewhere", env=env, capture_output=True, text=True, timeout=120,
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
    one_error_line(ran, "none.zarr")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_missing_console_script_is_named() -> None:
    with pytest.raises(RuntimeError, match="console script 'sortkd-cache-nope' not found"):
        console_script("sortkd-cache-nope")
