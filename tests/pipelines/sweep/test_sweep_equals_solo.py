"""Every sweep member equals its solo `train` run: bit for bit unstacked, within a stated
tolerance stacked (weights, BatchNorm running statistics, step losses, final evaluation)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from sortkd_cache.checkpoint import load_state_dict
from sortkd_cache.pipelines.sweep import sweep
from sortkd_cache.pipelines.sweep._grid import MemberSpec, SweepConfig, grid
from sortkd_cache.pipelines.train import TrainConfig, TrainResult, train
from sortkd_cache.testing import small_dump

#: stacked members against their solo runs (2 epochs x 3 steps of digits_cnn_s)
STACK_ATOL = 1e-4

COMMON: dict[str, Any] = {
    "epochs": 2,
    "milestones": (1,),
    "batch_size": 32,
    "device": "cpu",
    "data_seed": 5,
}


@pytest.fixture(scope="module")
def sparse_small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fake:96:10:8, 2 views of 2 chunks, top-3 of a random resnet8's logits, raw + sort."""
    from sortkd_cache.pipelines.sort import SortConfig, sort_store

    out = tmp_path_factory.mktemp("sweep-sparse") / "s.zarr"
    small_dump(out, dataset="fake:96:10:8", views=2, chunk_samples=48, topk=3)
    sort_store(SortConfig(store=str(out), method="sort", progress=False, num_workers=1))
    return out


def _sweep(store: Path, out: Path, stack: str, **grid_kw: Any) -> Any:
    options = {**COMMON, "cache": str(store), **grid_kw.pop("options", {})}
    members = grid(options, out=str(out), **grid_kw)
    return members, sweep(SweepConfig(out=str(out), members=members, stack=stack, progress=False))


def _solo(member_cfg: TrainConfig, out: Path) -> TrainResult:
    data = {k: v for k, v in member_cfg.to_dict().items()}
    return train(TrainConfig.from_dict({**data, "out": str(out), "progress": False}))


def _state(run: Path) -> dict[str, torch.Tensor]:
    return load_state_dict(run / "model.safetensors")


def _metrics(run: Path) -> list[dict[str, Any]]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.mark.parametrize(
    ("store_name", "soft"),
    [("small_store", "view"), ("small_store", "stream"), ("sparse_small_store", "view"),
     ("sparse_small_store", "stream")],
)  # fmt: skip
def test_unstacked_members_are_bit_identical_to_solo_runs(
    request: pytest.FixtureRequest, tmp_path: Path, store_name: str, soft: str
) -> None:
    store = request.getfixturevalue(store_name)
    losses = ["kd", "dkd", "lskd", "ctkd"] + (["ce"] if soft == "view" else [])
    members, result = _sweep(
        store, tmp_path / "sw", "off", students=["digits_mlp"], losses=losses,
        logits=["raw", "sort"], seeds=[0, 1], options={"soft_labels": soft},
    )  # fmt: skip
    assert len(members) == len(losses) * 4 - (2 if "ce" in losses else 0)
    for m in members:
        solo = _solo(m.cfg, tmp_path / "solo" / m.name)
        run = Path(m.cfg.out)
        assert result.results[m.name].step_losses == solo.step_losses, m.name
        a, b = _state(run), _state(Path(solo.run_dir))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), m.name
        assert _metrics(run) == _metrics(Path(solo.run_dir)), m.name
        assert result.members[m.name]["status"] == "finished"


def test_stacked_members_match_solo_runs_within_tolerance(
    small_store: Path, tmp_path: Path
) -> None:
    """digits_cnn_s has BatchNorm: its running statistics are per member when stacked."""
    members, result = _sweep(
        small_store, tmp_path / "sw", "on", students=["digits_cnn_s"], losses=["kd", "dkd"],
        logits=["raw", "sort"], seeds=[0, 1], options={"soft_labels": "view"},
    )  # fmt: skip
    assert result.stacked
    for m in members:
        solo = _solo(m.cfg, tmp_path / "solo" / m.name)
        got = result.results[m.name].step_losses
        assert got == pytest.approx(solo.step_losses, abs=STACK_ATOL), m.name
        a, b = _state(Path(m.cfg.out)), _state(Path(solo.run_dir))
        assert any("running_mean" in k for k in a)
        for k in a:
            assert torch.allclose(a[k].float(), b[k].float(), atol=STACK_ATOL), (m.name, k)
        ma, mb = _metrics(Path(m.cfg.out)), _metrics(Path(solo.run_dir))
        assert [r["test_top1"] for r in ma] == [r["test_top1"] for r in mb], m.name


@pytest.fixture(scope="module")
def sampled_small_store(small_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``copy --sample 3 --sample-head 1`` of the small dense store (raw + sort)."""
    from sortkd_cache.pipelines.copy import DeriveConfig, derive_store

    out = tmp_path_factory.mktemp("sweep-sampled") / "s.zarr"
    derive_store(str(small_store), str(out), DeriveConfig(sample=3, sample_head=1), progress=False)
    return out


@pytest.mark.parametrize("stack", ["off", "on"])
def test_sampled_members_with_either_tail_equal_their_solo_runs(
    sampled_small_store: Path, tmp_path: Path, stack: str
) -> None:
    """Members of a sampled store, KD, DKD and LSKD with the student and the counts tail in
    one pass: bit for bit their solo runs unstacked, within the stated tolerance stacked (the
    student tail's scale is pooled over each member's own batch)."""
    out = tmp_path / "sw"
    members: list[MemberSpec] = []
    for tail in ("student", "counts"):
        options = {**COMMON, "cache": str(sampled_small_store), "sparse_tail": tail}
        for m in grid(options, out=str(out), students=["digits_mlp"], losses=["kd", "dkd", "lskd"],
                      logits=["sort"], seeds=[0]):  # fmt: skip
            name = f"{m.name}-{tail}"
            members.append(MemberSpec(name, dataclasses.replace(m.cfg, out=str(out / name))))
    result = sweep(SweepConfig(out=str(out), members=tuple(members), stack=stack, progress=False))
    assert result.stacked == (stack == "on")
    firsts = set()
    for m in members:
        solo = _solo(m.cfg, tmp_path / "solo" / m.name)
        got, want = result.results[m.name].step_losses, solo.step_losses
        a, b = _state(Path(m.cfg.out)), _state(Path(solo.run_dir))
        if stack == "off":
            assert got == want and all(torch.equal(a[k], b[k]) for k in a), m.name
        else:
            assert got == pytest.approx(want, abs=STACK_ATOL), m.name
            assert all(torch.allclose(a[k], b[k], atol=STACK_ATOL) for k in a), m.name
        firsts.add(round(got[0], 6))
    assert len(firsts) == len(members)  # each loss and tail its own run
