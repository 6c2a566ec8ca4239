"""Stacking (``sortkd_cache/training/_stack.py`` and the optimizer-state half in ``_build``):
M models of one architecture as one vmapped model, tested directly on small models.

What stacking promises: it leaves the models' parameters and buffers as they were (stacking
and unstacking is a bit-for-bit round trip); a stacked forward equals each model's own forward
(to float rounding: batched kernels sum in another order), in eval and in train mode; the
gradients of a stacked backward land in each model's own parameters; training-mode BatchNorm
statistics go back into each model; the optimizer state stacks and unstacks bit for bit; and
what cannot stack is refused, naming the member.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable

import pytest
import torch
from torch import nn

from sortkd_cache.errors import ConfigError
from sortkd_cache.training import (
    StackedForward,
    can_stack,
    check_stackable,
    stack_groups,
    stack_optimizer_state,
    unstack_optimizer_state,
)

from ._engine import WORLD, member

pytestmark = [pytest.mark.fast, pytest.mark.usefixtures("one_thread")]

M = 3
Optimizer = Callable[..., torch.optim.Optimizer]  #: (params, lr=...) -> an optimizer


def net(seed: int, classes: int = 5, act: type[nn.Module] = nn.ReLU) -> nn.Module:
    """A small conv net with BatchNorm (parameters and buffers), seeded."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), act(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(4, classes),
    )  # fmt: skip


def snapshot(model: nn.Module) -> dict[str, bytes]:
    """Every parameter and buffer as bytes (a bit-for-bit fingerprint)."""
    return {k: v.detach().cpu().numpy().tobytes() for k, v in model.state_dict().items()}


def images(seed: int = 0, n: int = 6) -> torch.Tensor:
    return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_can_stack_only_one_architecture() -> None:
    assert can_stack([net(0), net(1), net(2)])
    assert can_stack([net(0)])
    assert not can_stack([])
    assert not can_stack([net(0), net(1, classes=6)])  # a shape differs
    assert not can_stack([net(0), net(1).double()])  # a dtype differs
    assert not can_stack([net(0), net(1, act=nn.GELU)])  # same tensors, another module type


def test_models_of_two_architectures_are_refused() -> None:
    with pytest.raises(ConfigError, match="do not share one architecture"):
        StackedForward([net(0), net(1, classes=6)])


@pytest.mark.parametrize("training", [False, True])
def test_a_stacked_forward_equals_each_models_own(training: bool) -> None:
    models = [net(s).train(training) for s in range(M)]
    solo = [copy.deepcopy(m) for m in models]
    x = images()
    out = StackedForward(models)(x)
    assert out.shape == (M, 6, 5)
    for i, model in enumerate(solo):
        torch.testing.assert_close(out[i], model(x), rtol=1e-5, atol=1e-6)


def test_stacking_and_unstacking_leave_every_parameter_and_buffer_bit_for_bit() -> None:
    """In eval mode nothing is updated: a call and its write-back change no bit."""
    models = [net(s).eval() for s in range(M)]
    before = [snapshot(m) for m in models]
    stack = StackedForward(models)
    for seed in range(3):
        stack(images(seed))
        stack.write_back()
    assert [snapshot(m) for m in models] == before


def test_training_batchnorm_statistics_go_back_into_each_model() -> None:
    models = [net(s).train() for s in range(M)]
    solo = [copy.deepcopy(m) for m in models]
    stack = StackedForward(models)
    for seed in range(2):
        x = images(seed)
        stack(x)
        stack.write_back()
        for model in solo:
            model(x)
    for mine, theirs in zip(models, solo, strict=True):
        a, b = mine.state_dict(), theirs.state_dict()
        assert int(a["1.num_batches_tracked"]) == int(b["1.num_batches_tracked"]) == 2
        for name in ("1.running_mean", "1.running_var"):
            torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)
    stack.write_back()  # nothing left to write: a second write-back changes nothing
    assert int(models[0].state_dict()["1.num_batches_tracked"]) == 2


def test_a_stacked_backward_puts_each_models_gradients_in_its_own_parameters() -> None:
    models = [net(s).train() for s in range(M)]
    solo = [copy.deepcopy(m) for m in models]
    x, y = images(), torch.tensor([0, 1, 2, 3, 4, 0])
    out = StackedForward(models)(x)
    sum(nn.functional.cross_entropy(out[i], y) for i in range(M)).backward()  # type: ignore[union-attr]
    for mine, theirs in zip(models, solo, strict=True):
        nn.functional.cross_entropy(theirs(x), y).backward()
        for (name, p), q in zip(mine.named_parameters(), theirs.parameters(), strict=True):
            assert p.grad is not None, name
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_random_numbers_are_refused_under_vmap() -> None:
    """The engine refuses such a member first (below); vmap's own refusal is the backstop."""
    models = [nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)).train() for _ in range(2)]
    with pytest.raises(RuntimeError, match="randomness"):
        StackedForward(models)(torch.randn(3, 4))


def _stepped(models: list[nn.Module], opt: Optimizer) -> list[torch.optim.Optimizer]:
    """One optimizer a model, each stepped twice on its own loss (so each holds state)."""
    optimizers = []
    for i, model in enumerate(models):
        o = opt(model.parameters(), lr=0.01)
        for seed in range(2):
            o.zero_grad()
            model(images(seed + i)).square().mean().backward()
            o.step()
        optimizers.append(o)
    return optimizers


def _state_bytes(o: torch.optim.Optimizer) -> list[dict[str, bytes | object]]:
    out = []
    for group in o.param_groups:
        for p in group["params"]:
            state = o.state.get(p, {})
            out.append({k: v.numpy().tobytes() if isinstance(v, torch.Tensor) else v
                        for k, v in state.items()})  # fmt: skip
    return out


@pytest.mark.parametrize(
    "opt",
    [functools.partial(torch.optim.SGD, momentum=0.9), torch.optim.AdamW],
    ids=["sgd", "adamw"],
)
def test_optimizer_state_stacks_and_unstacks_bit_for_bit(opt: Optimizer) -> None:
    models = [net(s).train() for s in range(M)]
    members = _stepped(models, opt)
    names = [n for n, _ in models[0].named_parameters()]
    stacked_params = [
        nn.Parameter(torch.stack([dict(m.named_parameters())[n].detach() for m in models]))
        for n in names
    ]
    stacked = opt(stacked_params, lr=0.01)
    stack_optimizer_state(members, stacked)
    for j, p in enumerate(stacked_params):
        for key, value in stacked.state[p].items():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                assert value.shape == (M, *models[0].get_parameter(names[j]).shape), key
    fresh = [opt(m.parameters(), lr=0.01) for m in models]
    unstack_optimizer_state(stacked, fresh)
    assert [_state_bytes(o) for o in fresh] == [_state_bytes(o) for o in members]


def test_optimizer_states_that_cannot_stack_are_refused() -> None:
    models = [net(s) for s in range(2)]
    params = [nn.Parameter(torch.stack([a, b])) for a, b in
              zip(models[0].parameters(), models[1].parameters(), strict=True)]  # fmt: skip
    half = [*_stepped(models[:1], torch.optim.AdamW), torch.optim.AdamW(models[1].parameters())]
    with pytest.raises(ConfigError, match="some models have optimizer state, others not"):
        stack_optimizer_state(half, torch.optim.AdamW(params))
    apart = _stepped(models[:1], torch.optim.AdamW) + _stepped(models[1:], torch.optim.AdamW)
    apart[1].step()  # Adam's step count now differs: one scalar cannot stand for both
    with pytest.raises(ConfigError, match="state 'step' differs"):
        stack_optimizer_state(apart, torch.optim.AdamW(params))


def test_the_refusal_names_the_member_that_cannot_stack() -> None:
    """Among several members, the one with dropout (or SyncBatchNorm) is named, not the first."""
    plain, drop, sync = member("plain", 0), member("drop", 1), member("sync", 2)
    drop.model.add_module("dropout", nn.Dropout(0.1))
    with pytest.raises(ConfigError, match=r"member 'drop' \(digits_cnn_s\) draws random") as e:
        check_stackable([plain, drop], WORLD)
    assert "plain" not in str(e.value)
    nn.SyncBatchNorm.convert_sync_batchnorm(sync.model)  # type: ignore[no-untyped-call]
    with pytest.raises(ConfigError, match=r"member 'sync' \(digits_cnn_s\) has BatchNorm") as e:
        check_stackable([plain, sync], WORLD)
    assert "plain" not in str(e.value)


def test_groups_are_one_architecture_of_two_or_more_and_never_a_learnt_temperature() -> None:
    a, b = member("a", 0), member("b", 1)
    mlp = member("mlp", 2, student="digits_mlp")  # alone of its architecture: steps solo
    ctkd = member("ctkd", 3, loss="ctkd")  # learns its temperature: steps solo
    assert [[m.name for m in g] for g in stack_groups([a, mlp, b, ctkd])] == [["a", "b"]]
    assert stack_groups([a, mlp]) == []
