"""A model's step in its precision: autocast, the gradient scaler, memory format, compile.

    amp = Amp(Precision("bf16", channels_last=True), device)
    model = amp.prepare(model)            # channels-last; the module to call (compiled)
    out = amp.forward(forward, x)         # autocast forward, float32 logits
    loss = loss_fn(out, ...)
    amp.backward(loss)                    # scaled under fp16
    amp.step(optimizer)                   # unscaled, skipped on inf/NaN gradients (fp16)

With ``fp32`` and neither switch every call is the plain one (``forward(x)``,
``loss.backward()``, ``optimizer.step()``), so fp32 runs stay bit-identical.
fp16's ``GradScaler.step`` reads its found-inf flag on the host once per step (a device sync
on CUDA): bf16 needs no scaler and no such read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from torch import Tensor

    from sortkd_cache.training._precision import Precision

__all__ = ["Amp"]

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Amp:
    """Applies a :class:`~sortkd_cache.training.Precision` to one model's steps."""

    def __init__(self, precision: Precision, device: torch.device) -> None:
        self.precision = precision
        self.device = device
        self.dtype = _DTYPES[precision.precision]
        fp16 = precision.precision == "fp16"
        self.scaler = torch.amp.GradScaler(device.type) if fp16 else None

    def prepare(self, model: torch.nn.Module) -> Callable[[Tensor], Tensor]:
        """Put ``model`` in channels-last format (in place) when asked; the callable to run
        it with (``torch.compile(model)`` with ``compile``, else ``model``). Keep ``model``
        for its state dict, evaluation and checkpoints."""
        if self.precision.channels_last:
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if self.precision.compile:
            compiled: Callable[[Tensor], Tensor] = torch.compile(model)
            return compiled
        return model

    def input(self, x: Tensor) -> Tensor:
        """A batch in the model's memory format."""
        if self.precision.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        """``torch.autocast`` in the precision's dtype (nothing under fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def forward(self, forward: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        """``forward(x)`` in the precision, its output as float32 (unchanged under fp32)."""
        if self.dtype is None and not self.precision.channels_last:
            return forward(x)
        with self.autocast():
            out = forward(self.input(x))
        return out.float()

    def backward(self, loss: Tensor) -> None:
        """``loss.backward()``, the loss scaled first under fp16."""
        scaled = loss if self.scaler is None else self.scaler.scale(loss)
        scaled.backward()  # type: ignore[no-untyped-call]

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``; under fp16 through the scaler (gradients unscaled, the step
        skipped when they hold inf/NaN) and the scale updated."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, object]:
        """The scaler's state (empty without one): checkpointed with the optimizer."""
        return {} if self.scaler is None else dict(self.scaler.state_dict())

    def load_state_dict(self, state: dict[str, object]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
