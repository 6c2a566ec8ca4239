"""``torch.optim`` objects from the registered configurations, for one model or a stack.

:func:`build_optimizer` makes the optimizer's ``torch.optim`` class for any parameters: one
model's, or the stacked tensors of M models (``torch.func.stack_module_state``; dimension 0
is the model). SGD (with Nesterov and weight decay) and AdamW update element by element, so
one step of the class on the stacked tensors is each model's own step, element for element;
that holds when the stacked models share the optimizer's options and lr (stack only those).
:func:`stack_optimizer_state` and :func:`unstack_optimizer_state` move the per-parameter state
(momentum buffers, Adam's averages and step count) between the models' own optimizers and the
stack's, so stacked and unstacked epochs can follow each other.

:func:`build_scheduler` makes the schedule's scheduler: the exact ``torch`` one where the
schedule names it (``multistep`` without warm-up: ``MultiStepLR``), else a ``LambdaLR`` on
:meth:`~sortkd_cache.training.LRSchedule.lr_at` (its state dict holds numbers only, so a
checkpoint stays weights-only loadable).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import torch

from sortkd_cache.errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor

    from sortkd_cache.training._optim import Optimizer
    from sortkd_cache.training._schedule import LRSchedule

__all__ = ["build_optimizer", "build_scheduler", "stack_optimizer_state", "unstack_optimizer_state"]

Scheduler = torch.optim.lr_scheduler.LRScheduler


def build_optimizer(
    config: Optimizer, params: Iterable[Tensor], lr: float
) -> torch.optim.Optimizer:
    """``config``'s ``torch.optim`` class over ``params`` at learning rate ``lr``."""
    cls: Callable[..., torch.optim.Optimizer] = getattr(torch.optim, config.torch_class)
    return cls(params, lr=lr, **config.kwargs())


def build_scheduler(config: LRSchedule, optimizer: torch.optim.Optimizer, epochs: int) -> Scheduler:
    """``config``'s lr schedule over ``epochs`` epochs on ``optimizer`` (stepped per epoch)."""
    exact = config.torch_scheduler()
    if exact is not None:
        name, kwargs = exact
        cls: Callable[..., Scheduler] = getattr(torch.optim.lr_scheduler, name)
        return cls(optimizer, **kwargs)
    factors = [_factor(config, epochs, float(g["lr"])) for g in optimizer.param_groups]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factors)


def _factor(config: LRSchedule, epochs: int, lr: float) -> Callable[[int], float]:
    def factor(epoch: int) -> float:
        return config.lr_at(epoch, epochs, lr) / lr

    return factor


def _params(optimizer: torch.optim.Optimizer) -> list[Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def stack_optimizer_state(
    members: Sequence[torch.optim.Optimizer], stacked: torch.optim.Optimizer
) -> None:
    """Load each member's per-parameter state into ``stacked`` (whose parameters are the
    members' first parameters stacked, in order): tensors of a parameter's shape are stacked
    along a new dimension 0; a scalar state (Adam's step) must agree and is taken once."""
    targets = _params(stacked)
    sources = [_params(m)[: len(targets)] for m in members]
    for j, target in enumerate(targets):
        states = [m.state.get(src[j]) for m, src in zip(members, sources, strict=True)]
        if all(s is None for s in states):
            continue
        if any(s is None for s in states):
            raise ConfigError("stacked optimizer: some models have optimizer state, others not")
        stacked.state[target] = {
            key: _stack_values([s[key] for s in states if s is not None], key)
            for key in states[0]  # type: ignore[union-attr]
        }


def _stack_values(values: list[object], key: str) -> object:
    first = values[0]
    if isinstance(first, torch.Tensor) and first.dim() > 0:
        return torch.stack([v for v in values if isinstance(v, torch.Tensor)])
    if any(not _same(v, first) for v in values[1:]):
        raise ConfigError(f"stacked optimizer: the models' state '{key}' differs ({values})")
    return first.clone() if isinstance(first, torch.Tensor) else first


def _same(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return bool(torch.equal(a, b))
    return a == b


def unstack_optimizer_state(
    stacked: torch.optim.Optimizer, members: Sequence[torch.optim.Optimizer]
) -> None:
    """Write ``stacked``'s per-parameter state back into each member's optimizer (slice i of
    every stacked tensor to member i; scalar states copied to each)."""
    targets = _params(stacked)
    for i, member in enumerate(members):
        for j, param in enumerate(_params(member)[: len(targets)]):
            state = stacked.state.get(targets[j])
            if not state:
                continue
            member.state[param] = {
                key: value[i].detach().clone()
                if isinstance(value, torch.Tensor) and value.dim() > 0
                else (value.clone() if isinstance(value, torch.Tensor) else value)
                for key, value in state.items()
            }
