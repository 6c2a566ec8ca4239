from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sortkd_cache.errors import ConfigError
from sortkd_cache.losses import (
    CTKDTemperature,
    LossConfig,
    ctkd_lambda,
    ctkd_loss,
    grad_reverse,
    kd_loss,
    lskd_loss,
    standardize,
)

pytestmark = pytest.mark.fast

S = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
T = [[2.0, 1.0, 0.0], [0.5, 0.5, 4.0]]


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _zscore(x: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=1, keepdims=True)
    std = np.sqrt(((x - mean) ** 2).sum(axis=1, keepdims=True) / (x.shape[1] - 1))
    return (x - mean) / (std + 1e-7)


def _kd_ref(s: np.ndarray, t: np.ndarray, temp: float) -> float:
    p_s = _softmax(s / temp)
    p_t = _softmax(t / temp)
    return float((p_t * (np.log(p_t) - np.log(p_s))).sum(axis=1).mean() * temp**2)


# ---------------------------------------------------------------- LSKD


def test_standardize_hand_computed() -> None:
    # [1, 2, 3]: mean 2, unbiased std sqrt(((1)+(0)+(1))/2) = 1.
    got = standardize(torch.tensor([[1.0, 2.0, 3.0], [4.0, 4.0, 4.0]], dtype=torch.float64))
    d = 1.0 + 1e-7
    np.testing.assert_allclose(got[0].numpy(), [-1 / d, 0.0, 1 / d], rtol=1e-12)
    np.testing.assert_array_equal(got[1].numpy(), [0.0, 0.0, 0.0])  # constant row -> zeros
    # [0, 3]: mean 1.5, unbiased std sqrt(2 * 1.5^2 / 1) = 1.5 * sqrt(2).
    two = standardize(torch.tensor([[0.0, 3.0]], dtype=torch.float64))
    np.testing.assert_allclose(two.numpy(), [[-1 / math.sqrt(2), 1 / math.sqrt(2)]], rtol=1e-6)


def test_standardize_float16_in_float32_out() -> None:
    got = standardize(torch.tensor(S, dtype=torch.float16))
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), _zscore(np.asarray(S)), rtol=1e-3, atol=1e-3)


def test_standardize_needs_two_classes() -> None:
    with pytest.raises(ConfigError, match=r"at least 2 classes.*\[4, 1\]"):
        standardize(torch.zeros(4, 1))


@pytest.mark.parametrize("temp", [1.0, 2.0])
def test_lskd_matches_hand_computation(temp: float) -> None:
    expected = _kd_ref(_zscore(np.asarray(S)), _zscore(np.asarray(T)), temp)
    got = lskd_loss(torch.tensor(S), torch.tensor(T), temp)
    assert got.shape == ()
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_lskd_float16_teacher_and_gradient() -> None:
    s = torch.tensor(S, requires_grad=True)
    t16 = torch.tensor(T, dtype=torch.float16)
    out = lskd_loss(s, t16, 2.0)
    assert out.dtype == torch.float32
    assert out.item() == lskd_loss(torch.tensor(S), t16.float(), 2.0).item()
    out.backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_lskd_zero_for_affinely_related_logits() -> None:
    s = torch.tensor(S, dtype=torch.float64)
    assert lskd_loss(s, 3.0 * s + 7.0, 2.0).item() == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float64, (3, 6), elements=st.floats(-20, 20)),
    arrays(np.float64, (3, 6), elements=st.floats(-20, 20)),
    arrays(np.float64, (3, 1), elements=st.floats(-50, 50)),
    arrays(np.float64, (3, 1), elements=st.floats(0.1, 10)),
    arrays(np.float64, (3, 1), elements=st.floats(-50, 50)),
    arrays(np.float64, (3, 1), elements=st.floats(0.1, 10)),
)
def test_lskd_invariant_to_row_shift_and_positive_scale(
    s: np.ndarray,
    t: np.ndarray,
    s_shift: np.ndarray,
    s_scale: np.ndarray,
    t_shift: np.ndarray,
    t_scale: np.ndarray,
) -> None:
    assume(bool((s.std(axis=1) > 0.5).all() and (t.std(axis=1) > 0.5).all()))
    base = lskd_loss(torch.from_numpy(s), torch.from_numpy(t), 2.0).item()
    moved = lskd_loss(
        torch.from_numpy(s * s_scale + s_shift), torch.from_numpy(t * t_scale + t_shift), 2.0
    ).item()
    assert moved == pytest.approx(base, rel=1e-4, abs=1e-5)


# ---------------------------------------------------------------- CTKD


def test_grad_reverse_identity_forward_reversed_backward() -> None:
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = grad_reverse(x, 0.25)
    assert torch.equal(y, x.detach())
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), [-0.25, -0.5, -0.75])


def test_grad_reverse_zero_lambda_blocks_gradient() -> None:
    x = torch.tensor(2.0, requires_grad=True)
    (grad_reverse(x, 0.0) * 5.0).backward()
    assert x.grad is not None and x.grad.item() == 0.0


def test_temperature_module_initial_value_and_parameters() -> None:
    module = CTKDTemperature()
    expected = 1.0 + 20.0 / (1.0 + math.exp(-1.0))  # official init: param = 1
    assert module.temperature() == pytest.approx(expected, rel=1e-6)
    assert module(0.5).item() == pytest.approx(expected, rel=1e-6)
    params = list(module.parameters())
    assert len(params) == 1 and params[0].shape == ()
    # Init so that the temperature starts at 4: sigmoid(p) = 3 / 20.
    four = CTKDTemperature(1.0, 20.0, init_param=math.log(3.0 / 17.0))
    assert four.temperature() == pytest.approx(4.0, rel=1e-6)


def test_temperature_module_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match=r"t_start.*0\.0"):
        CTKDTemperature(t_start=0.0)
    with pytest.raises(ConfigError, match=r"t_range.*-1\.0"):
        CTKDTemperature(t_range=-1.0)


def test_ctkd_loss_equals_kd_at_same_temperature() -> None:
    s, t = torch.tensor(S), torch.tensor(T)
    got = ctkd_loss(s, t, torch.tensor(3.0))
    assert got.item() == pytest.approx(kd_loss(s, t, 3.0).item(), rel=1e-6)
    got1 = ctkd_loss(s, t.half(), torch.tensor([3.0]))  # shape [1] as in CTKD, float16 teacher
    assert got1.shape == ()
    assert got1.item() == pytest.approx(kd_loss(s, t.half().float(), 3.0).item(), rel=1e-6)


def test_ctkd_gradient_to_temperature_matches_finite_difference() -> None:
    s, t = torch.tensor(S, dtype=torch.float64), torch.tensor(T, dtype=torch.float64)
    temp = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    ctkd_loss(s, t, temp).backward()
    h = 1e-6
    fd = (kd_loss(s, t, 3.0 + h).item() - kd_loss(s, t, 3.0 - h).item()) / (2 * h)
    assert temp.grad is not None
    assert temp.grad.item() == pytest.approx(fd, rel=1e-5)


def test_ctkd_gradient_reaches_param_reversed() -> None:
    lam = 0.7
    module = CTKDTemperature()
    s = torch.tensor(S, requires_grad=True)
    ctkd_loss(s, torch.tensor(T), module(lam)).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert module.param.grad is not None
    reversed_grad = module.param.grad.item()

    # The same loss without the GRL: d loss / d param, plainly.
    p = torch.tensor(1.0, requires_grad=True)
    plain_t = 1.0 + 20.0 * torch.sigmoid(p)
    ctkd_loss(torch.tensor(S), torch.tensor(T), plain_t).backward()
    assert p.grad is not None
    assert p.grad.item() != 0.0
    assert reversed_grad == pytest.approx(-lam * p.grad.item(), rel=1e-5)


def test_ctkd_loss_rejects_multi_element_temperature() -> None:
    with pytest.raises(ConfigError, match=r"one-element tensor, got \[2\]"):
        ctkd_loss(torch.tensor(S), torch.tensor(T), torch.tensor([1.0, 2.0]))


def _official_cosine_decay(i: int, max_value: float, min_value: float, loops: int) -> float:
    """CTKD's CosineDecay.get_value, transcribed."""
    i = min(max(i, 0), loops)
    value = (math.cos(i * math.pi / loops) + 1.0) * 0.5
    return value * (max_value - min_value) + min_value


def test_ctkd_lambda_schedule() -> None:
    cfg = LossConfig(name="ctkd")
    assert ctkd_lambda(0, cfg) == 0.0
    assert ctkd_lambda(5, cfg) == pytest.approx(0.5)
    assert ctkd_lambda(10, cfg) == pytest.approx(1.0)
    assert ctkd_lambda(240, cfg) == pytest.approx(1.0)
    assert ctkd_lambda(1, cfg) == pytest.approx((1 - math.cos(math.pi / 10)) / 2)
    for epoch in range(0, 15):
        # official: decay_max 0, decay_min -1 -> a negative multiplier; ours is its magnitude
        assert ctkd_lambda(epoch, cfg) == pytest.approx(
            -_official_cosine_decay(epoch, 0.0, -1.0, 10), abs=1e-12
        )
    values = [ctkd_lambda(e, cfg) for e in range(0, 12)]
    assert values == sorted(values)
    custom = LossConfig(name="ctkd", ctkd_lambda_min=0.2, ctkd_lambda_max=0.6, ctkd_lambda_epochs=4)
    assert ctkd_lambda(0, custom) == pytest.approx(0.2)
    assert ctkd_lambda(2, custom) == pytest.approx(0.4)
    assert ctkd_lambda(9, custom) == pytest.approx(0.6)
    assert ctkd_lambda(1, LossConfig(name="ctkd", ctkd_lambda_epochs=0)) == 1.0
