"""``sortkd-cache report`` from the command line (in-process, through click's runner, and
the installed script once): bad input is exit 2 with one line; an output never overlaps an
input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sortkd_cache.cli.main import cli

from ..conftest import CLI, cli_env
from .conftest import subset


def _cli(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _one_line_exit_2(res: Result | subprocess.CompletedProcess[str], *needles: str) -> None:
    code = res.exit_code if isinstance(res, Result) else res.returncode
    assert code == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_input_is_exit_2_with_one_line(runs: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "nothing-here").mkdir(parents=True)
    _one_line_exit_2(_cli("report", str(empty)), "no finished run", str(empty))
    _one_line_exit_2(
        subprocess.run([CLI, "report", str(empty)], capture_output=True, text=True,
                       env=cli_env(), timeout=300),
        "no finished run",
    )  # fmt: skip

    damaged = subset(runs, tmp_path / "damaged", ["kd-raw-0", "ce-raw-0"])
    (damaged / "kd-raw-0" / "summary.json").write_text('{"final_test_top1": ')
    _one_line_exit_2(_cli("report", str(damaged)), "damaged summary.json", "kd-raw-0")

    apart = subset(runs, tmp_path / "apart", ["kd-raw-0", "ce-raw-1"])
    _one_line_exit_2(_cli("report", str(apart)), "share no seed")

    _one_line_exit_2(_cli("report", str(runs), "--baseline", "nope"), "--baseline 'nope'")
    _one_line_exit_2(
        _cli("report", str(runs), "--out", str(runs / "report")), "--out", "lies inside"
    )


def test_report_writes_three_files_and_prints_json(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    res = subprocess.run(
        [CLI, "report", str(runs), "--out", str(out)],
        capture_output=True, text=True, env=cli_env(), timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "report.md"]
    assert (out / "report.md").read_text() in res.stdout
    # an existing report folder is refreshed; a folder of other files is refused
    again = _cli("report", str(runs), "--out", str(out), "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout) == json.loads((out / "report.json").read_text())
    (out / "notes.txt").write_text("mine")
    _one_line_exit_2(_cli("report", str(runs), "--out", str(out)), "notes.txt")


@pytest.mark.parametrize("option", ["--mix", "--baseline"])
def test_options_are_in_help(option: str) -> None:
    assert option in _cli("report", "--help").output
