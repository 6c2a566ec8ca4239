"""Many models of one architecture stepped as one: ``torch.func`` stacking and SGD on it.

    stack = StackedModels(models)              # M models of one architecture
    out = stack(x)                             # [M, B, C]: every model on the same batch
    loss = sum(loss_fn(out[m], ...) for m in range(M))
    loss.backward()                            # each model's gradient from its own loss
    sgd = StackedSGD(stack, lr=[...], momentum=[...], weight_decay=[...])
    sgd.step()
    stack.write_back(models)                   # parameters and BatchNorm statistics

The parameters and buffers of the M models are stacked along a new leading dimension
(:func:`torch.func.stack_module_state`) and the forward is :func:`torch.func.functional_call`
under :func:`torch.vmap`, so one batched kernel runs where M small ones would (HFTA's idea,
with PyTorch's own tools). BatchNorm keeps running statistics per model: the buffers are
vmapped too, and training-mode BatchNorm updates each model's slice in place.

:class:`StackedSGD` is ``torch.optim.SGD`` (momentum, weight decay, no dampening or Nesterov)
on the stacked tensors, with a learning rate, momentum and weight decay per model. It reads
and writes each model's momentum buffers in ``torch.optim.SGD``'s own state format, so a
stacked epoch and an unstacked one can follow each other. The results equal the M separate
models' to float rounding (batched kernels sum in another order), not bit for bit.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch.func import functional_call, stack_module_state

from sortkd_cache.errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["StackedModels", "StackedSGD", "can_stack"]


def can_stack(models: Sequence[torch.nn.Module]) -> bool:
    """Whether ``models`` share one architecture: the same parameter and buffer names,
    shapes and dtypes, and the same module types."""
    if len(models) < 2:
        return False

    def signature(m: torch.nn.Module) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
        named = [*m.named_parameters(), *m.named_buffers()]
        return [(n, tuple(t.shape), t.dtype) for n, t in named]

    first = signature(models[0])
    types = [type(mod) for mod in models[0].modules()]
    return all(
        signature(m) == first and [type(mod) for mod in m.modules()] == types for m in models[1:]
    )


class StackedModels:
    """M models of one architecture as stacked tensors; calling it runs all M on one batch."""

    def __init__(self, models: Sequence[torch.nn.Module]) -> None:
        if not models:
            raise ConfigError("StackedModels needs at least one model")
        if len(models) > 1 and not can_stack(models):
            raise ConfigError("StackedModels: the models do not share one architecture")
        self.size = len(models)
        params, buffers = stack_module_state(list(models))  # type: ignore[arg-type]
        self.params: dict[str, Tensor] = params
        self.buffers: dict[str, Tensor] = buffers
        self._base = copy.deepcopy(models[0]).to("meta")

    def __call__(self, x: Tensor) -> Tensor:
        """Every model's output on ``x`` (shared): ``[M, *model(x).shape]``."""
        base = self._base

        def one(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor) -> Tensor:
            out: Tensor = functional_call(base, (p, b), (x,))
            return out

        batched = torch.vmap(one, in_dims=(0, 0, None), randomness="different")
        out: Tensor = batched(self.params, self.buffers, x)
        return out

    def train(self, mode: bool = True) -> None:
        self._base.train(mode)

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad = None

    def write_back(self, models: Sequence[torch.nn.Module]) -> None:
        """Copy each model's slice of the parameters and buffers into ``models`` (in order)."""
        with torch.no_grad():
            for i, model in enumerate(models):
                for name, param in model.named_parameters():
                    param.copy_(self.params[name][i])
                for name, buf in model.named_buffers():
                    buf.copy_(self.buffers[name][i])


class StackedSGD:
    """SGD with momentum and weight decay on :class:`StackedModels`, per-model hyper-parameters.

    ``torch.optim.SGD``'s update (dampening 0, no Nesterov): ``d = g + wd * p``;
    ``buf = d`` at the first step, else ``buf = momentum * buf + d``; ``p -= lr * buf``.
    """

    def __init__(
        self,
        stack: StackedModels,
        *,
        lr: Sequence[float],
        momentum: Sequence[float],
        weight_decay: Sequence[float],
    ) -> None:
        m = stack.size
        if not len(lr) == len(momentum) == len(weight_decay) == m:
            raise ConfigError(f"StackedSGD: one lr, momentum and weight decay per model ({m})")
        self.stack = stack
        self.buffers: dict[str, Tensor | None] = dict.fromkeys(stack.params)
        device = next(iter(stack.params.values())).device
        self._lr = torch.tensor(list(lr), dtype=torch.float32, device=device)
        self._momentum = torch.tensor(list(momentum), dtype=torch.float32, device=device)
        self._wd = torch.tensor(list(weight_decay), dtype=torch.float32, device=device)

    def _per_model(self, values: Tensor, like: Tensor) -> Tensor:
        return values.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))

    def set_lr(self, lr: Sequence[float]) -> None:
        self._lr = torch.tensor(list(lr), dtype=torch.float32, device=self._lr.device)

    @torch.no_grad()
    def step(self) -> None:
        for name, p in self.stack.params.items():
            if p.grad is None:
                continue
            d = p.grad.add(p * self._per_model(self._wd, p))
            buf = self.buffers[name]
            if buf is None:
                buf = d.clone()
            else:
                buf.mul_(self._per_model(self._momentum, p)).add_(d)
            self.buffers[name] = buf
            p.sub_(buf * self._per_model(self._lr, p))

    def load_momentum(self, states: Sequence[torch.optim.SGD]) -> None:
        """Take each model's momentum buffers from its ``torch.optim.SGD`` (in model order;
        its parameters in ``named_parameters`` order); all or none must have them."""
        names = list(self.stack.params)
        have = [_momentum_buffers(opt, len(names)) for opt in states]
        if all(h is None for h in have):
            return
        if any(h is None for h in have):
            raise ConfigError("StackedSGD: some models have momentum buffers and others not")
        for j, name in enumerate(names):
            self.buffers[name] = torch.stack([h[j] for h in have if h is not None]).to(
                self.stack.params[name].device
            )

    def store_momentum(self, states: Sequence[torch.optim.SGD]) -> None:
        """Write each model's momentum buffers into its ``torch.optim.SGD`` state."""
        names = list(self.stack.params)
        for i, opt in enumerate(states):
            params = opt.param_groups[0]["params"]
            for j, name in enumerate(names):
                buf = self.buffers[name]
                if buf is not None:
                    opt.state[params[j]]["momentum_buffer"] = buf[i].detach().clone()


def _momentum_buffers(opt: torch.optim.SGD, count: int) -> list[Tensor] | None:
    params = opt.param_groups[0]["params"][:count]
    bufs = [opt.state.get(p, {}).get("momentum_buffer") for p in params]
    if any(b is None for b in bufs):
        return None
    return [b for b in bufs if b is not None]
