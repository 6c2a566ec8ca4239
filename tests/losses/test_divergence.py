"""The divergence guard: the pure check, and `train` stopping on a student built to diverge."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from sortkd_cache.errors import ConfigError
from sortkd_cache.losses import DIVERGENCE_FACTOR, check_divergence, divergence_bound
from sortkd_cache.models import _registry, register_model
from sortkd_cache.pipelines.train import TrainConfig, train
from sortkd_cache.testing import invoke, one_error_line


@pytest.mark.fast
def test_sane_losses_pass() -> None:
    assert check_divergence(3.0, 4.6, epoch=1, lr=0.05) is None
    assert check_divergence(45.9, 4.6, epoch=7, lr=0.05) is None  # under 10x
    assert check_divergence(9.9, 0.01, epoch=1, lr=0.05) is None  # the reference floor
    assert divergence_bound(4.6) == pytest.approx(DIVERGENCE_FACTOR * 4.6)


@pytest.mark.fast
@pytest.mark.parametrize("loss", [math.nan, math.inf, -math.inf, 46.1, 1e6])
def test_nan_or_large_losses_fire_naming_epoch_and_lr(loss: float) -> None:
    message = check_divergence(loss, 4.6, epoch=3, lr=0.2)
    assert message is not None
    assert message.startswith("training diverged at epoch 3: ")
    assert "--lr 0.02" in message and "\n" not in message


@pytest.mark.fast
def test_factor_is_an_argument() -> None:
    assert check_divergence(20.0, 4.6, epoch=1, lr=0.1, factor=2.0) is not None
    assert check_divergence(20.0, 4.6, epoch=1, lr=0.1, factor=5.0) is None


class NoBatchNorm(nn.Module):
    """Four linear layers with no BatchNorm and no saturation: under KD's T^2 = 16 a high
    learning rate makes its weights, logits and loss grow geometrically."""

    def __init__(self, num_classes: int, in_chans: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.AdaptiveAvgPool2d((8, 8)),
            nn.Flatten(),
            nn.Linear(in_chans * 64, 64),
            nn.Linear(64, 64),
            nn.Linear(64, 64),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


@pytest.fixture
def no_bn_student() -> Iterator[str]:
    saved = _registry.MODELS.snapshot()
    register_model("test_no_bn", family="test", description="BN-free CNN")(NoBatchNorm)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield "test_no_bn"
    torch.set_num_threads(threads)
    _registry.MODELS.restore(saved)


def _kd(store: Path, out: Path, student: str, lr: float) -> TrainConfig:
    return TrainConfig(
        cache=str(store),
        student=student,
        loss="kd",
        loss_options={"temperature": 4.0},
        epochs=3,
        milestones=(),
        lr=lr,
        out=str(out),
        progress=False,
        device="cpu",
    )


def test_train_stops_on_a_student_built_to_diverge(
    digits_store: Path, tmp_path: Path, no_bn_student: str
) -> None:
    with pytest.raises(ConfigError, match=r"^training diverged at epoch \d: .*--lr 0\.05\)$"):
        train(_kd(digits_store, tmp_path / "run", no_bn_student, 0.5))
    assert not (tmp_path / "run" / "summary.json").exists()  # it never trained on


def test_the_same_student_at_a_lower_lr_stays_quiet(
    digits_store: Path, tmp_path: Path, no_bn_student: str
) -> None:
    res = train(_kd(digits_store, tmp_path / "run", no_bn_student, 0.01))
    assert res.finished and all(math.isfinite(v) for v in res.step_losses)


def test_cli_exits_2_with_one_line(digits_store: Path, tmp_path: Path) -> None:
    args = ["train", "--cache", str(digits_store), "--student", "digits_mlp"]
    args += ["--loss", "kd", "--temperature", "4", "--lr", "50", "--epochs", "2"]
    args += ["--milestones", "", "--out", str(tmp_path / "run"), "--device", "cpu"]
    one_error_line(invoke(*args), "training diverged at epoch 1", "--lr 5)")
