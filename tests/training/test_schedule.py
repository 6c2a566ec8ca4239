"""lr schedules as registered options: multistep without warm-up is MultiStepLR itself,
warm-up and cosine give their documented lr at known epochs, and a checkpointed scheduler
state loads weights-only."""

from __future__ import annotations

import io
import itertools
import math
import warnings

import pytest
import torch

from sortkd_cache.errors import ConfigError
from sortkd_cache.training import (
    SCHEDULES,
    Cosine,
    MultiStep,
    build_optimizer,
    build_scheduler,
    make_optimizer,
    make_schedule,
)

torch.set_num_threads(1)


def _lrs(values: dict[str, object], epochs: int, lr: float = 0.1) -> list[float]:
    """The lr each epoch trains at (the scheduler stepped after each epoch)."""
    param = torch.nn.Parameter(torch.zeros(2))
    opt = build_optimizer(make_optimizer({}), [param], lr)
    sched = build_scheduler(make_schedule(values, epochs), opt, epochs)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # no optimizer.step() here: only the lr matters
            sched.step()
    return out


def test_multistep_defaults_are_multisteplr_bit_for_bit() -> None:
    config = make_schedule({"milestones": (2, 4, 5)}, 7)
    assert config == MultiStep(warmup_epochs=0, milestones=(2, 4, 5), lr_decay=0.1)
    param = torch.nn.Parameter(torch.zeros(2))
    opt = build_optimizer(make_optimizer({}), [param], 0.05)
    assert type(build_scheduler(config, opt, 7)) is torch.optim.lr_scheduler.MultiStepLR
    before_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.05)
    before = torch.optim.lr_scheduler.MultiStepLR(before_opt, [2, 4, 5], gamma=0.1)
    expected = []
    for _ in range(7):
        expected.append(before_opt.param_groups[0]["lr"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            before.step()
    assert _lrs({"milestones": (2, 4, 5)}, 7, 0.05) == expected  # == on floats: bit for bit


def test_cosine_with_warmup_at_known_epochs() -> None:
    lrs = _lrs({"schedule": "cosine", "warmup_epochs": 2, "min_lr": 0.0}, 10, 0.1)
    assert lrs[0] == pytest.approx(0.1 / 3)  # (0 + 1) / (2 + 1)
    assert lrs[1] == pytest.approx(0.2 / 3)
    assert lrs[2] == pytest.approx(0.1)  # the cosine starts at the full lr
    assert lrs[6] == pytest.approx(0.05)  # half way through the 8 cosine epochs
    assert lrs[9] == pytest.approx(0.05 * (1 + math.cos(math.pi * 7 / 8)))
    assert all(a > b for a, b in itertools.pairwise(lrs[2:]))


def test_cosine_decays_towards_min_lr() -> None:
    lrs = _lrs({"schedule": "cosine", "min_lr": 0.01}, 4, 0.1)
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[2] == pytest.approx(0.01 + 0.09 * 0.5)
    assert Cosine(min_lr=0.01).lr_at(4, 4, 0.1) == pytest.approx(0.01)


def test_multistep_with_warmup() -> None:
    lrs = _lrs({"warmup_epochs": 3, "milestones": (5,), "lr_decay": 0.5}, 7, 0.2)
    assert lrs == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.2, 0.1, 0.1])


def test_lambda_scheduler_state_loads_weights_only() -> None:
    param = torch.nn.Parameter(torch.zeros(2))
    opt = build_optimizer(make_optimizer({}), [param], 0.1)
    sched = build_scheduler(make_schedule({"schedule": "cosine", "warmup_epochs": 1}), opt, 5)
    buf = io.BytesIO()
    torch.save({"scheduler": sched.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    again = build_scheduler(make_schedule({"schedule": "cosine", "warmup_epochs": 1}), opt, 5)
    again.load_state_dict(state["scheduler"])
    assert again.last_epoch == sched.last_epoch


@pytest.mark.parametrize(
    ("values", "epochs", "message"),
    [
        ({"schedule": "cosine", "milestones": (10, 20)}, 30,
         "--milestones 10,20 does nothing with --schedule cosine (it takes --warmup-epochs, "
         "--min-lr)"),
        ({"min_lr": 0.001}, 30, "--min-lr 0.001 does nothing with --schedule multistep"),
        ({"schedule": "step"}, 30, "unknown --schedule 'step'; known: cosine, multistep"),
        ({"warmup_epochs": 5}, 5, "--warmup-epochs must be less than --epochs 5, got 5"),
        ({"milestones": (5, 3)}, 9, "--milestones must be increasing epochs, got [5, 3]"),
        ({"warmup_epochs": -1}, 9, "--warmup-epochs must be an integer >= 0, got -1"),
    ],
)  # fmt: skip
def test_bad_or_inapplicable_options_are_one_line(
    values: dict[str, object], epochs: int, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        make_schedule(values, epochs)
    assert message in str(info.value)


def test_the_registry_lists_both() -> None:
    assert SCHEDULES.names() == ["cosine", "multistep"]
