"""`sortkd-cache sweep`: bad grids, replay of a member, resume after kill -9, a NaN member."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from sortkd_cache.checkpoint import load_state_dict
from sortkd_cache.pipelines.sweep import sweep
from sortkd_cache.pipelines.sweep._grid import MemberSpec, SweepConfig, grid
from sortkd_cache.testing import cli_env, console_script, invoke, one_error_line, run_cli

SMALL = ("--epochs", "3", "--milestones", "2", "--batch-size", "32", "--device", "cpu")


def _sweep_args(store: Path, out: Path, *extra: str) -> list[str]:
    return [
        "sweep", "--cache", str(store), "--student", "digits_mlp", "--loss", "kd,dkd",
        "--logits", "raw,sort", "--seeds", "0,1", *SMALL, "--stack", "off", "--no-progress",
        "--out", str(out), *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--loss", "kd,nope"), "member 'digits_mlp-nope-raw-s0': unknown --loss 'nope'"),
        (("--loss", "ce,kd", "--temperature", "3"), "member 'digits_mlp-ce-s0'"),
        (("--loss", "kd", "--seeds", "0,0"), "member 'digits_mlp-kd-raw-s0': duplicate member"),
        (("--loss", "kd", "--logits", "raw,bogus"), "member 'digits_mlp-kd-bogus-s0'"),
        (("--loss", "kd", "--stack", "maybe"), "--stack 'maybe'"),
    ],
)
def test_a_bad_grid_exits_2_in_one_line_and_writes_nothing(
    small_store: Path, tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    out = tmp_path / "sw"
    base = ["sweep", "--cache", str(small_store), "--student", "digits_mlp", "--out", str(out)]
    one_error_line(invoke(*base, *SMALL, *args), needle)
    assert not out.exists()


def test_member_config_replays_it_alone_with_train(small_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "sw"
    proc = invoke(*_sweep_args(small_store, out, "--json"))
    assert proc.exit_code == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert {m["status"] for m in summary["members"].values()} == {"finished"}
    assert len(summary["members"]) == 8
    report = json.loads(proc.stdout)["results"]
    assert report == json.loads((out / "report.json").read_text())
    assert [v["name"] for v in report["variants"]] == ["kd raw", "kd sort", "dkd raw", "dkd sort"]
    (kd_sort,) = [p for p in report["paired"] if p["variant"] == "kd sort"]
    top1 = {
        (v["name"], s): t
        for v in report["variants"]
        for s, t in zip(v["seeds"], v["test_top1"], strict=True)
    }
    assert kd_sort["diffs"] == [top1[("kd sort", s)] - top1[("kd raw", s)] for s in (0, 1)]
    assert "| kd sort - kd raw |" in (out / "report.md").read_text()
    assert (out / "report.html").is_file()
    listed = invoke("list", "--sweep", str(out), "--json")
    assert listed.exit_code == 0, listed.stderr
    members = json.loads(listed.stdout)["members"]
    assert len(members) == 8 and {m["status"] for m in members.values()} == {"finished"}
    member = out / "digits_mlp-dkd-sort-s1"
    again = tmp_path / "again"
    proc = invoke("train", "--config", str(member / "config.json"), "--out", str(again))
    assert proc.exit_code == 0, proc.stderr
    a, b = (
        load_state_dict(member / "model.safetensors"),
        load_state_dict(again / "model.safetensors"),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_resume_after_kill_9_is_bit_identical(small_store: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    assert run_cli(*_sweep_args(small_store, whole)).returncode == 0
    cut = tmp_path / "cut"
    proc = subprocess.Popen(
        [console_script(), *_sweep_args(small_store, cut)], env=cli_env(), stderr=subprocess.DEVNULL
    )
    first = cut / "digits_mlp-kd-raw-s0" / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (cut / "summary.json").exists()  # killed before the end
    refused = run_cli(*_sweep_args(small_store, cut))
    assert refused.returncode == 2 and "--resume" in refused.stderr
    resumed = run_cli(*_sweep_args(small_store, cut, "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    for member in json.loads((whole / "sweep.json").read_text())["members"]:
        name = member["name"]
        a = load_state_dict(whole / name / "model.safetensors")
        b = load_state_dict(cut / name / "model.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), name
        rows = [(whole / name / "metrics.jsonl"), (cut / name / "metrics.jsonl")]
        strip = [[{k: v for k, v in json.loads(r).items() if k != "seconds"}
                  for r in p.read_text().splitlines()] for p in rows]  # fmt: skip
        assert strip[0] == strip[1], name


def test_a_diverging_member_is_marked_failed_and_the_others_go_on(
    small_store: Path, tmp_path: Path
) -> None:
    options = {"cache": str(small_store), "epochs": 2, "milestones": (1,), "batch_size": 32,
               "device": "cpu"}  # fmt: skip
    members = grid(
        options, out=str(tmp_path / "sw"), students=["digits_mlp"], losses=["kd"],
        logits=["raw"], seeds=[0, 1, 2],
    )  # fmt: skip
    bad = members[1]
    members = (
        members[0],
        MemberSpec(bad.name, dataclasses.replace(bad.cfg, lr=100.0)),
        members[2],
    )
    result = sweep(SweepConfig(out=str(tmp_path / "sw"), members=members, progress=False))
    status = {name: info["status"] for name, info in result.members.items()}
    assert status == {members[0].name: "finished", bad.name: "failed", members[2].name: "finished"}
    assert "diverged" in result.members[bad.name]["error"]
    summary = json.loads((tmp_path / "sw" / "summary.json").read_text())
    assert summary["members"][bad.name]["status"] == "failed"
    assert (tmp_path / "sw" / members[2].name / "model.safetensors").is_file()
