"""``sweep`` tells scripts what happened (issue 28, item 6).

Reproducers as the probes ran them: a sweep whose members all diverged exited 0; ``--topk``
with only CE members was accepted and did nothing; ``--resume`` took another ``--stack``;
``list --sweep`` on a damaged summary.json crashed (exit 1); a summary.json cut short by a
crash counted as a finished run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sortkd_cache.testing import invoke, one_error_line

from .conftest import tree_digest

SMALL = ("--epochs", "2", "--milestones", "1", "--batch-size", "32", "--device", "cpu")


def _sweep(store: Path, out: Path, *extra: str, loss: str = "kd,dkd") -> list[str]:
    return [
        "sweep", "--cache", str(store), "--student", "digits_mlp", "--loss", loss,
        "--logits", "raw", "--seeds", "0", *SMALL, "--stack", "off", "--no-progress",
        "--out", str(out), *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def finished(small_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted sweep of two members. Read only."""
    out = tmp_path_factory.mktemp("outcome") / "sw"
    result = invoke(*_sweep(small_store, out))
    assert result.exit_code == 0, result.output
    return out


def _without_time(sweep_dir: Path) -> dict[str, object]:
    """DIR/summary.json without the sweep's wall time (the one value a resume cannot repeat),
    its own path written as DIR."""
    summary = json.loads((sweep_dir / "summary.json").read_text().replace(str(sweep_dir), "DIR"))
    summary.pop("seconds")
    return summary


def test_a_sweep_whose_members_all_diverged_exits_3(small_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "sw"
    result = invoke(*_sweep(small_store, out, "--lr", "100"))
    line = one_error_line(result, "2 of 2 members failed", str(out), code=3)
    assert "summary.json" in line
    members = json.loads((out / "summary.json").read_text())["members"]
    assert {m["status"] for m in members.values()} == {"failed"}
    assert invoke(*_sweep(small_store, tmp_path / "j", "--lr", "100", "--json")).exit_code == 3


def test_topk_with_no_member_reading_soft_labels_exits_2(small_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "sw"
    result = invoke(*_sweep(small_store, out, "--topk", "3", loss="ce"))
    one_error_line(result, "--topk", "no member reads soft labels")
    assert not out.exists()


def test_resume_with_another_stack_exits_2(finished: Path, tmp_path: Path) -> None:
    out = Path(shutil.copytree(finished, tmp_path / "sw"))
    (out / "summary.json").unlink()  # as if killed before the end
    before = tree_digest(out)
    args = [a if a != "off" else "on" for a in _sweep(Path(_cache(out)), out, "--resume")]
    one_error_line(invoke(*args), "--stack off", "--resume")
    assert tree_digest(out) == before


def _cache(sweep_dir: Path) -> str:
    grid = json.loads((sweep_dir / "sweep.json").read_text())
    return str(grid["members"][0]["config"]["cache"])


def test_a_resumed_sweep_writes_the_uninterrupted_summary(finished: Path, tmp_path: Path) -> None:
    """Killed after every member's summary but before the sweep's; one member's summary.json
    cut short by the crash (unreadable: that member counts as unfinished and finishes again
    from its last checkpoint)."""
    out = Path(shutil.copytree(finished, tmp_path / "sw"))
    (out / "summary.json").unlink()
    member = out / "digits_mlp-dkd-raw-s0"
    (member / "summary.json").write_text('{"final_test_top1": 1')
    assert invoke("list", "--sweep", str(out)).exit_code == 0
    result = invoke(*_sweep(Path(_cache(out)), out, "--resume"))
    assert result.exit_code == 0, result.output
    assert _without_time(out) == _without_time(finished)
    again, whole = (d / "digits_mlp-dkd-raw-s0" / "summary.json" for d in (out, finished))
    assert again.read_text() == whole.read_text()


def test_list_sweep_on_a_damaged_summary_exits_2_naming_it(finished: Path, tmp_path: Path) -> None:
    out = Path(shutil.copytree(finished, tmp_path / "sw"))
    for damage in ('{"members": ', "[1, 2]", '{"members": 7}'):
        (out / "summary.json").write_text(damage)
        one_error_line(invoke("list", "--sweep", str(out)), str(out / "summary.json"), "damaged")


def test_list_kinds_with_sweep_is_refused(finished: Path) -> None:
    one_error_line(invoke("list", "--sweep", str(finished), "models"), "list models does nothing")
