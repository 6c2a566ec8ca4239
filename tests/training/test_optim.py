"""Optimizers as registered options: the defaults are today's SGD, AdamW's options reach
torch.optim.AdamW, an option of another optimizer is refused, and one torch.optim step on
stacked tensors equals each model's own step."""

from __future__ import annotations

import pytest
import torch

from sortkd_cache.errors import ConfigError
from sortkd_cache.training import (
    OPTIMIZERS,
    SGD,
    AdamW,
    build_optimizer,
    make_optimizer,
    stack_optimizer_state,
    unstack_optimizer_state,
)

torch.set_num_threads(1)


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))


Batch = tuple[torch.Tensor, torch.Tensor]


def _data(n: int, seed: int) -> list[Batch]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,), generator=g))
            for _ in range(n)]  # fmt: skip


def _steps(model: torch.nn.Module, opt: torch.optim.Optimizer, batches: list[Batch]) -> None:
    for x, y in batches:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()  # type: ignore[no-untyped-call]
        opt.step()


def test_sgd_defaults_are_the_optimizer_every_run_used_before() -> None:
    config = make_optimizer({})
    assert config == SGD(momentum=0.9, nesterov=False, weight_decay=5e-4)
    a, b = _model(0), _model(0)
    ours = build_optimizer(config, a.parameters(), 0.05)
    before = torch.optim.SGD(b.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    assert type(ours) is torch.optim.SGD
    assert ours.param_groups[0].keys() == before.param_groups[0].keys()
    assert {k: v for k, v in ours.param_groups[0].items() if k != "params"} == {
        k: v for k, v in before.param_groups[0].items() if k != "params"
    }
    _steps(a, ours, _data(5, 1))
    _steps(b, before, _data(5, 1))
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)  # bit for bit


def test_adamw_options_reach_torch_adamw() -> None:
    config = make_optimizer(
        {"optimizer": "adamw", "weight_decay": 0.05, "adam_beta1": 0.8, "adam_beta2": 0.99,
         "adam_eps": 1e-6}
    )  # fmt: skip
    assert isinstance(config, AdamW)
    opt = build_optimizer(config, _model(0).parameters(), 1e-3)
    assert type(opt) is torch.optim.AdamW
    group = opt.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (
        1e-3, (0.8, 0.99), 1e-6, 0.05
    )  # fmt: skip


def test_nesterov_reaches_torch_sgd() -> None:
    opt = build_optimizer(make_optimizer({"nesterov": True}), _model(0).parameters(), 0.1)
    assert opt.param_groups[0]["nesterov"] is True


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"optimizer": "adamw", "momentum": 0.8},
         "--momentum 0.8 does nothing with --optimizer adamw (it takes --weight-decay, "
         "--adam-beta1, --adam-beta2, --adam-eps)"),
        ({"nesterov": True, "adam_eps": 1e-3},
         "--adam-eps 0.001 does nothing with --optimizer sgd"),
        ({"optimizer": "adam"}, "unknown --optimizer 'adam'; known: adamw, sgd"),
        ({"nesterov": True, "momentum": 0.0}, "--nesterov needs --momentum > 0"),
        ({"momentum": 1.5}, "--momentum must be a finite number <= 1, got 1.5"),
        ({"optimizer": "adamw", "adam_beta2": "x"}, "--adam-beta2 expects a number"),
    ],
)  # fmt: skip
def test_bad_or_inapplicable_options_are_one_line(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_optimizer(values)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_an_option_at_its_default_passes_for_either_optimizer() -> None:
    assert isinstance(make_optimizer({"optimizer": "adamw", "momentum": 0.9}), AdamW)


@pytest.mark.parametrize("values", [{"nesterov": True}, {"optimizer": "adamw"}])
def test_one_step_on_stacked_tensors_is_each_models_own_step(values: dict[str, object]) -> None:
    """The stacked path's optimizer: the same torch.optim class over stacked parameters, its
    state moved in and out; after 3 solo steps, 4 stacked and 2 solo, every model equals
    the one that took all 9 steps alone."""
    config = make_optimizer({**values, "weight_decay": 0.01})
    data = [_data(9, 10 + i) for i in range(3)]
    solo, ref = [_model(s) for s in range(3)], [_model(s) for s in range(3)]
    opts = [build_optimizer(config, m.parameters(), 0.05) for m in solo]
    for i in range(3):
        _steps(solo[i], opts[i], data[i][:3])
        _steps(ref[i], build_optimizer(config, ref[i].parameters(), 0.05), data[i])
    names = [n for n, _ in solo[0].named_parameters()]
    stacked = {
        n: torch.stack([dict(m.named_parameters())[n].detach() for m in solo]).requires_grad_()
        for n in names
    }
    opt = build_optimizer(config, list(stacked.values()), 0.05)
    assert type(opt) is type(opts[0])
    stack_optimizer_state(opts, opt)
    for k in range(3, 7):
        loss = sum(
            torch.nn.functional.cross_entropy(
                torch.func.functional_call(solo[0], {n: stacked[n][i] for n in names}, (x,)), y
            )
            for i, (x, y) in enumerate(d[k] for d in data)
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[union-attr]
        opt.step()
    with torch.no_grad():
        for i, m in enumerate(solo):
            for n, p in m.named_parameters():
                p.copy_(stacked[n][i])
    unstack_optimizer_state(opt, opts)
    for i in range(3):
        _steps(solo[i], opts[i], data[i][7:])
    for m, r in zip(solo, ref, strict=True):
        for p, q in zip(m.parameters(), r.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=0, atol=1e-6)


def test_the_registry_lists_both() -> None:
    assert OPTIMIZERS.names() == ["adamw", "sgd"]
