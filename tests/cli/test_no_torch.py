"""Commands that need no model do not import torch (issue 30, item 5).

Each command runs in-process (the CLI's own group, through click's CliRunner) in a fresh
interpreter, which then reports whether ``torch`` is in ``sys.modules``. A command that needs
a model (``verify --recompute``, a derived ``copy``) still gets it (the control case).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import cli_env

_PROBE = """
import json, sys
from click.testing import CliRunner
from sortkd_cache.cli.main import cli
result = CliRunner().invoke(cli, json.loads(sys.argv[1]))
print(json.dumps({"code": result.exit_code, "out": result.output,
                  "torch": "torch" in sys.modules}))
"""


def _run_in_fresh_process(*args: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(list(args))],
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    assert proc.returncode == 0, proc.stderr
    found: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("train", "--help"),
        ("sweep", "--help"),
        ("info", "{store}"),
        ("info", "{store}", "--json"),
        ("verify", "{store}"),
        ("verify", "{store}", "--json"),
        ("copy", "{store}", "{tmp}/copy.zarr"),
        ("copy", "{store}", "{tmp}/copy.zip"),
        ("list", "losses", "augment", "methods"),
    ],
)
def test_a_command_that_needs_no_model_does_not_import_torch(
    small_store: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    filled = [a.format(store=small_store, tmp=tmp_path) for a in args]
    found = _run_in_fresh_process(*filled)
    assert found["code"] == 0, found["out"]
    assert found["torch"] is False, (args, found["out"])


def test_the_commands_do_their_work_without_torch(small_store: Path, tmp_path: Path) -> None:
    info = _run_in_fresh_process("info", str(small_store), "--json")
    assert json.loads(str(info["out"]))["num_samples"] == 96
    verify = _run_in_fresh_process("verify", str(small_store), "--json")
    assert json.loads(str(verify["out"]))["sound"] is True
    dst = tmp_path / "c.zarr"
    assert _run_in_fresh_process("copy", str(small_store), str(dst))["code"] == 0
    assert _run_in_fresh_process("verify", str(dst))["code"] == 0


def test_a_derived_copy_still_computes_with_torch(small_store: Path, tmp_path: Path) -> None:
    found = _run_in_fresh_process("copy", str(small_store), str(tmp_path / "t.zarr"), "--topk", "3")
    assert found["code"] == 0, found["out"]
    assert found["torch"] is True
