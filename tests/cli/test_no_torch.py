"""Commands that need no model do not import torch (issue 30, item 5).

Each command runs in-process (the CLI's own group, through click's CliRunner) in a fresh
interpreter, which then reports whether ``torch`` is in ``sys.modules``. A command that needs
a model (``verify --recompute``, a derived ``copy``) still gets it (the control case).
``list`` reads every registry by name (models and datasets included: their factories and
loaders are lazy ``module:attr`` targets), ``list --sweep`` a sweep's directory, and ``report``
reads runs made by ``train``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sortkd_cache.testing import cli_env, invoke

from ..conftest import train_run

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
        ("list",),
        ("list", "--json"),
        ("list", "models"),
        ("list", "datasets"),
        ("list", "losses", "augment", "methods"),
        ("list", "backends", "--json"),
        ("report", "{runs}"),
        ("report", "{runs}", "--json", "--baseline", "ce"),
        ("report", "{runs}", "--out", "{tmp}/report"),
    ],
)
def test_a_command_that_needs_no_model_does_not_import_torch(
    small_store: Path, runs: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    filled = [a.format(store=small_store, tmp=tmp_path, runs=runs) for a in args]
    found = _run_in_fresh_process(*filled)
    assert found["code"] == 0, found["out"]
    assert found["torch"] is False, (args, found["out"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, small_store: Path) -> Path:
    """Four finished ``train`` runs: CE and KD, seeds 0 and 1."""
    root = tmp_path_factory.mktemp("no-torch-runs")
    for loss in ("ce", "kd"):
        for seed in (0, 1):
            train_run(root / f"{loss}-{seed}", small_store, loss, seed)
    return root


@pytest.fixture(scope="module")
def a_sweep(tmp_path_factory: pytest.TempPathFactory, small_store: Path) -> Path:
    """A finished sweep of two members (KD, seeds 0 and 1, one epoch)."""
    out = tmp_path_factory.mktemp("no-torch-sweep") / "sweep"
    result = invoke(
        "sweep", "--cache", str(small_store), "--student", "digits_mlp", "--loss", "kd",
        "--seeds", "0,1", "--epochs", "1", "--milestones", "", "--batch-size", "32",
        "--device", "cpu", "--threads", "1", "--stack", "off", "--no-progress", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_list_sweep_reads_the_members_without_torch(a_sweep: Path) -> None:
    found = _run_in_fresh_process("list", "--sweep", str(a_sweep), "--json")
    assert found["code"] == 0, found["out"]
    assert found["torch"] is False
    members = json.loads(str(found["out"]))["members"]
    assert len(members) == 2 and {m["status"] for m in members.values()} == {"finished"}
    text = _run_in_fresh_process("list", "--sweep", str(a_sweep))
    assert text["torch"] is False and "2 members" in str(text["out"])


def test_the_commands_do_their_work_without_torch(small_store: Path, tmp_path: Path) -> None:
    info = _run_in_fresh_process("info", str(small_store), "--json")
    assert json.loads(str(info["out"]))["num_samples"] == 96
    verify = _run_in_fresh_process("verify", str(small_store), "--json")
    assert json.loads(str(verify["out"]))["sound"] is True
    dst = tmp_path / "c.zarr"
    assert _run_in_fresh_process("copy", str(small_store), str(dst))["code"] == 0
    assert _run_in_fresh_process("verify", str(dst))["code"] == 0
    models = json.loads(str(_run_in_fresh_process("list", "models", "--json")["out"]))
    assert {"resnet8", "wrn_40_2", "digits_mlp"} <= set(models["models"]["names"])
    summaries = models["models"]["summaries"]
    assert summaries["resnet8"] == "CIFAR ResNet-8 (CRD), widths 16-16-32-64"
    assert summaries["digits_mlp"] == "MLP 64-128-C for 8x8 digits"
    datasets = json.loads(str(_run_in_fresh_process("list", "datasets", "--json")["out"]))
    assert {"cifar100", "digits", "fake"} <= set(datasets["datasets"]["names"])
    assert datasets["datasets"]["summaries"]["fake"] == "SPEC fake:N:C:SIZE"


def test_report_reads_the_runs_without_torch(runs: Path, tmp_path: Path) -> None:
    found = _run_in_fresh_process("report", str(runs), "--json", "--out", str(tmp_path / "r"))
    assert found["torch"] is False and found["code"] == 0, found["out"]
    data = json.loads(str(found["out"]))
    assert sorted(len(v["seeds"]) for v in data["variants"]) == [2, 2]
    assert (tmp_path / "r" / "report.html").stat().st_size > 0


_RECIPE_PROBE = """
import sys
from sortkd_cache.pipelines.recipes import load_recipe
recipe = load_recipe(sys.argv[1])
print(len(recipe.students), "torch" in sys.modules)
"""


@pytest.mark.parametrize("name", ["digits_demo", "cifar100_resnet32x4_resnet8x4"])
def test_a_recipe_of_registered_architectures_loads_without_torch(name: str) -> None:
    """What ``report`` reads of a recipe output: its recipe, checked (architectures by name)."""
    proc = subprocess.run(
        [sys.executable, "-c", _RECIPE_PROBE, name], capture_output=True, text=True, env=cli_env()
    )
    assert proc.returncode == 0, proc.stderr
    students, imported = proc.stdout.split()
    assert int(students) > 0 and imported == "False", proc.stdout


def test_a_derived_copy_still_computes_with_torch(small_store: Path, tmp_path: Path) -> None:
    found = _run_in_fresh_process("copy", str(small_store), str(tmp_path / "t.zarr"), "--topk", "3")
    assert found["code"] == 0, found["out"]
    assert found["torch"] is True
