"""`sweep --stack`: auto stacks nothing; on refuses members that cannot equal their solo runs."""

from __future__ import annotations

from pathlib import Path

from sortkd_cache.testing import invoke

from .test_sweep_cli import SMALL


def test_stack_on_refuses_a_student_that_draws_random_numbers(
    small_store: Path, tmp_path: Path
) -> None:
    """mobilenet_v2 (torchvision) has dropout in its classifier: exit 2, one line naming the
    member, before anything is written."""
    out = tmp_path / "sw"
    proc = invoke(
        "sweep", "--cache", str(small_store), "--student", "mobilenet_v2", "--loss", "kd",
        "--seeds", "0,1", *SMALL, "--stack", "on", "--no-progress", "--out", str(out),
    )  # fmt: skip
    assert proc.exit_code == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "member 'mobilenet_v2-kd-raw-s0' (mobilenet_v2) draws random numbers" in lines[0]
    assert "Dropout" in lines[0] and "--stack off" in lines[0]
    assert not out.exists()


def test_stack_auto_stacks_nothing(small_store: Path, tmp_path: Path) -> None:
    proc = invoke(
        "sweep", "--cache", str(small_store), "--student", "digits_cnn_s", "--loss", "kd",
        "--seeds", "0,1", *SMALL, "--stack", "auto", "--no-progress", "--json",
        "--out", str(tmp_path / "sw"),
    )  # fmt: skip
    assert proc.exit_code == 0, proc.stderr
    assert '"stacked": false' in proc.stdout


def test_help_says_auto_stacks_nothing() -> None:
    proc = invoke("sweep", "--help")
    assert "stacks nothing until a GPU run shows a gain" in " ".join(proc.stdout.split())
