"""Helpers for tests of sortkd-cache and of packages that plug into it.

Two kinds: running the command line (in this process through click's ``CliRunner``, or as
the installed console script in a subprocess, as a user runs it) and checking its one-line
refusals; and making small stores with the real pipelines (a random teacher on ``fake``
data, on the CPU, in seconds) to test against::

    from sortkd_cache.testing import dump_and_sort, invoke, one_error_line

    def test_my_loss_trains(tmp_path):
        store = dump_and_sort(tmp_path / "s.zarr", "fake:96:10:8", chunk_samples=48)
        result = invoke("train", "--cache", str(store), "--loss", "my_loss", ...)
        assert result.exit_code == 0, result.stderr

    def test_a_bad_value_is_one_line(tmp_path):
        one_error_line(invoke("sort", str(tmp_path / "absent.zarr")), "absent.zarr")

The module sits above the command line in the import layers (it imports ``cli`` and the
pipelines); nothing in the package imports it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from sortkd_cache.cli.main import cli
from sortkd_cache.pipelines.copy import DeriveConfig, derive_store
from sortkd_cache.pipelines.dump import DumpConfig, dump
from sortkd_cache.pipelines.sort import SortConfig, sort_store

__all__ = [
    "SMALL_DUMP",
    "cli_env",
    "console_script",
    "dump_and_sort",
    "error_lines",
    "invoke",
    "one_error_line",
    "run_cli",
    "small_dump",
    "topk_store",
]

#: What :func:`small_dump` passes to ``DumpConfig`` unless told otherwise: 200 samples of
#: 10 classes at 8x8, 3 views of a random resnet8, chunks of 64, on the CPU, quiet.
SMALL_DUMP: Mapping[str, Any] = {
    "dataset": "fake:200:10:8",
    "teacher": "resnet8",
    "teacher_init": "random",
    "views": 3,
    "chunk_samples": 64,
    "progress": False,
    "device": "cpu",
}


# -- the command line ------------------------------------------------------------------------
def console_script(name: str = "sortkd-cache") -> str:
    """The installed console script ``name`` of the environment running this: beside
    ``sys.executable`` (a venv's bin/, unresolved), in its scripts path, else on PATH."""
    folders = [Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))]
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.exe"):
            if candidate.is_file():
                return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"console script {name!r} not found: install the package with [test]")
    return found


def cli_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """An environment for a CLI subprocess: ``base`` (this process's by default) without
    progress bars or ``SORTKD_DEBUG`` (tracebacks), plus ``extra``."""
    env = dict(os.environ if base is None else base)
    env["SORTKD_NO_PROGRESS"] = "1"
    env.pop("SORTKD_DEBUG", None)
    env.update(extra)
    return env


def invoke(*args: str, catch_exceptions: bool = False, **kwargs: Any) -> Result:
    """``sortkd-cache ARGS`` in this process (click's ``CliRunner``): fast, and an
    unexpected exception propagates with its traceback unless ``catch_exceptions``.
    ``kwargs`` go to ``CliRunner.invoke`` (``input``, ``env``, ``terminal_width``...)."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=catch_exceptions, **kwargs)


def run_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
    check: bool = False,
    command: Sequence[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``sortkd-cache ARGS`` as a user runs it: the installed console script (or
    ``command``) in a subprocess with :func:`cli_env` (over ``env``); text output captured.
    ``check``: a non-zero exit raises ``AssertionError`` with the output."""
    cmd = [*(command or [console_script()]), *args]
    proc = subprocess.run(
        cmd, env=cli_env(env), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def _code_and_stderr(outcome: Result | subprocess.CompletedProcess[str]) -> tuple[int, str]:
    if isinstance(outcome, Result):
        return outcome.exit_code, outcome.stderr
    return outcome.returncode, outcome.stderr


def error_lines(outcome: Result | subprocess.CompletedProcess[str]) -> list[str]:
    """The non-empty lines of a run's stderr."""
    return [line for line in _code_and_stderr(outcome)[1].strip().splitlines() if line]


def one_error_line(
    outcome: Result | subprocess.CompletedProcess[str], *needles: str, code: int = 2
) -> str:
    """Assert a refusal as the house rules word it: exit ``code`` and exactly one stderr
    line, starting ``error: `` and naming every needle (no traceback). Returns the line.
    ``outcome``: an :func:`invoke` result or a :func:`run_cli` process."""
    exit_code, stderr = _code_and_stderr(outcome)
    lines = stderr.strip().splitlines()
    if exit_code != code or len(lines) != 1 or not lines[0].startswith("error: "):
        raise AssertionError(f"expected exit {code} and one 'error: ' line, got {exit_code}:\n"
                             f"{stderr}")  # fmt: skip
    missing = [n for n in needles if n not in lines[0]]
    if missing:
        raise AssertionError(f"{missing} not named in {lines[0]!r}")
    return lines[0]


# -- small stores made with the real pipelines -----------------------------------------------
def small_dump(out: str | os.PathLike[str], **options: Any) -> Path:
    """A small store at ``out`` dumped by the real ``dump`` (:data:`SMALL_DUMP`, overridden
    by ``options``, which are ``DumpConfig`` fields). Returns its path."""
    dump(DumpConfig(out=str(out), **{**SMALL_DUMP, **options}))
    return Path(out)


def dump_and_sort(
    out: str | os.PathLike[str],
    spec: str = "fake:96:10:8",
    chunk_samples: int = 48,
    teacher: str = "resnet8",
    methods: Sequence[str] = ("sort",),
    **options: Any,
) -> Path:
    """A 2-view store of ``spec`` (a random ``teacher``) dumped, then sorted by each of
    ``methods``: raw + sort by default. ``options`` go to ``DumpConfig``."""
    small_dump(out, **{"views": 2, **options, "dataset": spec, "teacher": teacher,
                       "chunk_samples": chunk_samples})  # fmt: skip
    for method in methods:
        sort_store(SortConfig(store=str(out), method=method, progress=False, num_workers=1))
    return Path(out)


def topk_store(
    dense: str | os.PathLike[str], out: str | os.PathLike[str], k: int, *, sort: bool = False
) -> Path:
    """``copy --topk k`` of a dense store (every kind it holds, as sparse top-``k`` rows);
    ``sort``: then sort the sparse raw rows (``sort --overwrite`` over the copy: its ``sort``
    is the sparse kernel's, not the dense sort's top-``k``)."""
    derive_store(str(dense), str(out), DeriveConfig(topk=k), progress=False)
    if sort:
        sort_store(SortConfig(store=str(out), method="sort", overwrite=True, progress=False))
    return Path(out)
