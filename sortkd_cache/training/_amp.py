"""A model's step in its precision: autocast, the gradient scaler, memory format, compile.

    amp = Amp(Precision("bf16", channels_last=True), device)
    amp.prepare(model)                    # channels-last, in place (before DDP or stacking)
    out = amp.forward(net, x)             # autocast forward of net (the model, or DDP
                                          # around it; compiled on first use), float32 logits
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
        #: (what was compiled, its compiled form): compiled once, on first use
        self._compiled: tuple[object, Callable[[Tensor], Tensor]] | None = None

    def prepare(self, model: torch.nn.Module) -> None:
        """Put ``model`` in channels-last format, in place, when asked (before it is wrapped
        in DistributedDataParallel or stacked)."""
        if self.precision.channels_last:
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def runner(self, net: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
        """What runs ``net``: ``torch.compile(net)`` with ``compile`` (made once per ``net``;
        its state dict stays the model's), else ``net``."""
        if not self.precision.compile:
            return net
        if self._compiled is None or self._compiled[0] is not net:
            self._compiled = (net, torch.compile(net))
        return self._compiled[1]

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

    def forward(
        self, net: Callable[[Tensor], Tensor], x: Tensor, *, compiled: bool = True
    ) -> Tensor:
        """``net(x)`` in the precision (compiled with ``compile``, unless ``compiled`` is
        False: a vmapped stack runs eagerly), its output as float32; exactly ``net(x)``
        under fp32 without the switches."""
        run = self.runner(net) if compiled else net
        if self.dtype is None and not self.precision.channels_last:
            return run(x)
        with self.autocast():
            out = run(self.input(x))
        return out.float()

    def scaled(self, loss: Tensor) -> Tensor:
        """The loss to differentiate: scaled under fp16 (several members' scaled losses may
        be summed into one backward: each one's gradients come from its own term)."""
        return loss if self.scaler is None else self.scaler.scale(loss)

    def backward(self, loss: Tensor) -> None:
        """``loss.backward()``, the loss scaled first under fp16."""
        self.scaled(loss).backward()  # type: ignore[no-untyped-call]

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
