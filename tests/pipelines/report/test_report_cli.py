"""``sortkd-cache report`` from the command line (in-process, through click's runner, and
the installed script once): bad input is exit 2 with one line; an output never overlaps an
input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sortkd_cache.testing import invoke, one_error_line, run_cli

from .conftest import subset


def test_bad_input_is_exit_2_with_one_line(runs: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "nothing-here").mkdir(parents=True)
    one_error_line(invoke("report", str(empty)), "no finished run", str(empty))
    one_error_line(run_cli("report", str(empty)), "no finished run")

    damaged = subset(runs, tmp_path / "damaged", ["kd-raw-0", "ce-raw-0"])
    (damaged / "kd-raw-0" / "summary.json").write_text('{"final_test_top1": ')
    one_error_line(invoke("report", str(damaged)), "damaged summary.json", "kd-raw-0")

    apart = subset(runs, tmp_path / "apart", ["kd-raw-0", "ce-raw-1"])
    one_error_line(invoke("report", str(apart)), "share no seed")

    one_error_line(invoke("report", str(runs), "--baseline", "nope"), "--baseline 'nope'")
    one_error_line(
        invoke("report", str(runs), "--out", str(runs / "report")), "--out", "lies inside"
    )


def test_report_writes_three_files_and_prints_json(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    res = run_cli("report", str(runs), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "report.md"]
    assert (out / "report.md").read_text() in res.stdout
    # an existing report folder is refreshed; a folder of other files is refused
    again = invoke("report", str(runs), "--out", str(out), "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout) == json.loads((out / "report.json").read_text())
    (out / "notes.txt").write_text("mine")
    one_error_line(invoke("report", str(runs), "--out", str(out)), "notes.txt")


@pytest.mark.parametrize("option", ["--mix", "--baseline"])
def test_options_are_in_help(option: str) -> None:
    assert option in invoke("report", "--help").output
