"""The training switches end to end: precision, optimizer and schedule options act in
`train` and `sweep`, are recorded in config.json, replay with `--config`, and an option
that does not apply is exit 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sortkd_cache.pipelines.train import TrainConfig, train
from sortkd_cache.pipelines.train._config import resume_difference
from sortkd_cache.testing import invoke, one_error_line

torch.set_num_threads(1)

QUICK = ("--student", "digits_mlp", "--batch-size", "64", "--device", "cpu", "--no-progress")


def _rows(run: Path) -> list[dict[str, float]]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(r).items() if k != "seconds"} for r in lines]


def test_bf16_on_the_cpu_trains_digits_records_it_and_replays(tmp_path: Path) -> None:
    run = tmp_path / "bf16"
    proc = invoke("train", "--dataset", "digits", "--loss", "ce", "--epochs", "2",
                "--milestones", "", "--precision", "bf16", *QUICK, "--out", str(run))  # fmt: skip
    assert proc.exit_code == 0, proc.stderr
    config = json.loads((run / "config.json").read_text())
    switches = (config["precision"], config["channels_last"], config["compile"])
    assert switches == ("bf16", False, False)
    rows = _rows(run)
    assert rows[-1]["test_top1"] > 60.0  # it learnt (10 classes: chance is 10%; fp32: 79%)
    again = tmp_path / "again"
    proc = invoke("train", "--config", str(run / "config.json"), "--out", str(again))
    assert proc.exit_code == 0, proc.stderr
    assert json.loads((again / "config.json").read_text())["precision"] == "bf16"
    assert _rows(again) == rows  # bf16 on the CPU is deterministic: the replay is the run


def test_fp16_on_the_cpu_trains_with_a_checkpointed_scaler(tmp_path: Path) -> None:
    cfg = TrainConfig(dataset="digits", student="digits_mlp", loss="ce", epochs=1, milestones=(),
                      batch_size=64, device="cpu", progress=False, precision="fp16",
                      out=str(tmp_path / "fp16"))  # fmt: skip
    result = train(cfg)
    assert result.finished and result.final_test_top1 > 50.0
    state = torch.load(tmp_path / "fp16" / "checkpoint.pt", weights_only=True)
    assert state["scaler"]["scale"] > 0


def test_adamw_with_cosine_and_warmup_act_and_are_recorded(tmp_path: Path) -> None:
    run = tmp_path / "adamw"
    proc = invoke("train", "--dataset", "digits", "--loss", "ce", "--epochs", "3",
                "--optimizer", "adamw", "--lr", "0.002", "--weight-decay", "0.05",
                "--adam-beta2", "0.99", "--schedule", "cosine", "--warmup-epochs", "1",
                *QUICK, "--out", str(run))  # fmt: skip
    assert proc.exit_code == 0, proc.stderr
    lrs = [r["lr"] for r in _rows(run)]
    # a metrics row records the lr its epoch trained at: 0.001 (warm-up: 1/2), 0.002, then
    # half a cosine over the 2 epochs after the warm-up: 0.001
    assert lrs == pytest.approx([0.001, 0.002, 0.001])
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    group = state["optimizer"]["param_groups"][0]
    assert (tuple(group["betas"]), group["weight_decay"]) == ((0.9, 0.99), 0.05)
    assert "exp_avg_sq" in next(iter(state["optimizer"]["state"].values()))
    config = json.loads((run / "config.json").read_text())
    assert (config["optimizer"], config["schedule"], config["warmup_epochs"]) == (
        "adamw", "cosine", 1
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--optimizer", "adamw", "--momentum", "0.8"),
         "--momentum 0.8 does nothing with --optimizer adamw (it takes --weight-decay, "
         "--adam-beta1, --adam-beta2, --adam-eps)"),
        (("--schedule", "cosine", "--milestones", "10"),
         "--milestones 10 does nothing with --schedule cosine"),
        (("--min-lr", "0.01",), "--min-lr 0.01 does nothing with --schedule multistep"),
        (("--precision", "fp8",), "unknown --precision 'fp8'; known: fp32, bf16, fp16"),
        (("--warmup-epochs", "5", "--epochs", "5"),
         "--warmup-epochs must be less than --epochs 5, got 5"),
        (("--nesterov", "--momentum", "0"), "--nesterov needs --momentum > 0"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", ["train", "sweep"])
def test_an_option_that_does_not_apply_is_exit_2_with_one_line(
    tmp_path: Path, command: str, args: tuple[str, ...], message: str
) -> None:
    where = ("--dataset", "digits", "--loss", "ce") if command == "train" else ("--cache", "x")
    result = invoke(command, *where, "--student", "digits_mlp", *args, "--out", str(tmp_path / "r"))
    one_error_line(result, message)
    assert not (tmp_path / "r").exists()


def test_a_run_recorded_before_these_options_resumes() -> None:
    """config.json of a run made before the options existed has none of them: it reads as
    the defaults (sgd, multistep, fp32), so the run resumes unchanged."""
    cfg = TrainConfig(dataset="digits", student="digits_mlp", loss="ce", out="r")
    new = ("optimizer", "nesterov", "adam_beta1", "adam_beta2", "adam_eps", "schedule",
           "warmup_epochs", "min_lr", "precision", "channels_last", "compile")  # fmt: skip
    old = {k: v for k, v in cfg.to_dict().items() if k not in new}
    assert resume_difference(old, cfg) is None
    changed = TrainConfig(dataset="digits", student="digits_mlp", loss="ce", out="r",
                          precision="bf16")  # fmt: skip
    assert resume_difference(old, changed) == '--precision "fp32" -> "bf16"'
    assert resume_difference(old, TrainConfig(**{**cfg.to_dict(), "compile": True})) is None


@pytest.mark.slow
@pytest.mark.parametrize("stack", ["off", "on"])
def test_a_sweep_takes_the_switches_and_its_member_replays_alone(
    small_store: Path, tmp_path: Path, stack: str
) -> None:
    """Members of a sweep with AdamW, cosine and bf16 record them; unstacked, a member's
    config.json replays it alone bit for bit; stacked (the same torch.optim.AdamW over the
    stacked parameters), to float rounding."""
    out = tmp_path / "sweep"
    proc = invoke("sweep", "--cache", str(small_store), "--student", "digits_mlp",
                "--loss", "kd", "--seeds", "0,1", "--epochs", "2", "--batch-size", "32",
                "--optimizer", "adamw", "--lr", "0.003", "--schedule", "cosine",
                "--precision", "bf16", "--stack", stack, "--device", "cpu", "--no-progress",
                "--out", str(out))  # fmt: skip
    assert proc.exit_code == 0, proc.stderr
    member = out / "digits_mlp-kd-raw-s1"
    config = json.loads((member / "config.json").read_text())
    assert (config["optimizer"], config["schedule"], config["precision"]) == (
        "adamw", "cosine", "bf16"
    )  # fmt: skip
    solo = tmp_path / "solo"
    proc = invoke("train", "--config", str(member / "config.json"), "--out", str(solo))
    assert proc.exit_code == 0, proc.stderr
    a, b = _rows(member), _rows(solo)
    if stack == "off":
        assert a == b
    else:
        for x, y in zip(a, b, strict=True):
            assert x["loss"] == pytest.approx(y["loss"], rel=1e-2)
