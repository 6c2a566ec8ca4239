"""Members of one architecture run as one model: the ``torch.func`` forward behind stacking.

    stack = StackedForward(models)       # M models of one architecture
    out = stack(x)                       # [M, B, C]: every model on the same batch
    sum(loss_fn(out[m], ...) for m in range(M)).backward()   # each model's own gradients
    stack.write_back()                   # BatchNorm statistics into each model

Each call stacks the M models' parameters along a new leading dimension (``torch.stack``,
differentiable: the gradients land in each model's own parameters, which each member's own
``torch.optim`` optimizer then steps, exactly as in its solo run) and runs
:func:`torch.func.functional_call` under :func:`torch.vmap`, so one batched kernel runs where
M small ones would (HFTA's idea, with PyTorch's own tools). The buffers (BatchNorm running
statistics) are stacked too; training-mode BatchNorm updates each model's slice in place, and
:meth:`StackedForward.write_back` copies the slices back into the models after the step.

The results equal the M separate models' to float rounding (batched kernels sum in another
order), not bit for bit. Random numbers are refused (``randomness="error"``): a stacked
model cannot draw its solo run's stream, so a model with dropout is not stacked.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch.func import functional_call

from sortkd_cache.errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["StackedForward", "can_stack"]


def can_stack(models: Sequence[torch.nn.Module]) -> bool:
    """Whether ``models`` share one architecture: the same parameter and buffer names,
    shapes and dtypes, and the same module types."""
    if len(models) < 1:
        return False

    def signature(m: torch.nn.Module) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
        named = [*m.named_parameters(), *m.named_buffers()]
        return [(n, tuple(t.shape), t.dtype) for n, t in named]

    first = signature(models[0])
    types = [type(mod) for mod in models[0].modules()]
    return all(
        signature(m) == first and [type(mod) for mod in m.modules()] == types for m in models[1:]
    )


class StackedForward:
    """M models of one architecture called as one (see the module docstring)."""

    def __init__(self, models: Sequence[torch.nn.Module]) -> None:
        if not can_stack(models):
            raise ConfigError("stacking: the models do not share one architecture")
        self.models = list(models)
        self.params = [dict(m.named_parameters()) for m in self.models]
        self.buffers = [dict(m.named_buffers()) for m in self.models]
        self._base = copy.deepcopy(self.models[0]).to("meta")
        self._stacked_buffers: dict[str, Tensor] = {}

    def __call__(self, x: Tensor) -> Tensor:
        """Every model's output on ``x`` (shared): ``[M, *model(x).shape]``."""
        base = self._base
        base.train(self.models[0].training)
        params = {n: torch.stack([p[n] for p in self.params]) for n in self.params[0]}
        with torch.no_grad():
            buffers = {n: torch.stack([b[n] for b in self.buffers]) for n in self.buffers[0]}
        self._stacked_buffers = buffers

        def one(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor) -> Tensor:
            out: Tensor = functional_call(base, (p, b), (x,))
            return out

        batched = torch.vmap(one, in_dims=(0, 0, None), randomness="error")
        out: Tensor = batched(params, buffers, x)
        return out

    def write_back(self) -> None:
        """Copy each model's slice of the buffers the last call updated into the model."""
        with torch.no_grad():
            for name, stacked in self._stacked_buffers.items():
                mine = [b[name] for b in self.buffers]
                torch._foreach_copy_(mine, list(stacked.unbind(0)))
        self._stacked_buffers = {}
