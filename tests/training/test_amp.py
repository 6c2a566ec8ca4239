"""Precision switches on one step: fp32 is the plain step, bf16/fp16 autocast the forward and
return float32 logits, fp16 scales the loss (its scaler state checkpoints weights-only), and
channels-last converts the model and the batch."""

from __future__ import annotations

import io

import pytest
import torch

from sortkd_cache.training import Amp, Precision, build_optimizer, make_optimizer

torch.set_num_threads(1)
CPU = torch.device("cpu")


def _net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 5),
    )  # fmt: skip


def _step(amp: Amp, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    opt = build_optimizer(make_optimizer({}), model.parameters(), 0.1)
    amp.prepare(model)
    out = amp.forward(model, x)
    loss = torch.nn.functional.cross_entropy(out, y)
    opt.zero_grad(set_to_none=True)
    amp.backward(loss)
    amp.step(opt)
    return out


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.randn(4, 3, 8, 8, generator=g), torch.randint(0, 5, (4,), generator=g)


def test_fp32_is_the_plain_step_bit_for_bit() -> None:
    x, y = _batch()
    a, b = _net(), _net()
    amp = Amp(Precision(), CPU)
    assert amp.scaler is None and amp.dtype is None
    out = _step(amp, a, x, y)
    opt = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    ref = b(x)
    torch.nn.functional.cross_entropy(ref, y).backward()  # type: ignore[no-untyped-call]
    opt.step()
    assert torch.equal(out, ref)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_forward_gives_float32_logits_close_to_fp32(precision: str) -> None:
    x, y = _batch()
    out = _step(Amp(Precision(precision), CPU), _net(), x, y)
    ref = _net()(x)
    assert out.dtype == torch.float32
    assert not torch.equal(out, ref)  # it did compute in the lower precision
    torch.testing.assert_close(out, ref, rtol=0.05, atol=0.05)


def test_fp16_scales_the_loss_and_its_state_checkpoints_weights_only() -> None:
    x, y = _batch()
    amp = Amp(Precision("fp16"), CPU)
    assert amp.scaler is not None
    model = _net()
    before = [p.detach().clone() for p in model.parameters()]
    _step(amp, model, x, y)
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))
    buf = io.BytesIO()
    torch.save({"scaler": amp.state_dict()}, buf)
    buf.seek(0)
    again = Amp(Precision("fp16"), CPU)
    again.load_state_dict(torch.load(buf, weights_only=True)["scaler"])
    assert again.state_dict() == amp.state_dict()
    assert Amp(Precision("bf16"), CPU).state_dict() == {}


def test_channels_last_converts_model_and_batch() -> None:
    x, y = _batch()
    model = _net()
    amp = Amp(Precision(channels_last=True), CPU)
    out = _step(amp, model, x, y)
    conv = model[0]
    assert isinstance(conv, torch.nn.Conv2d)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert amp.input(x).is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, _net()(x), rtol=1e-5, atol=1e-5)
