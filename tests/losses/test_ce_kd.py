from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sortkd_cache.errors import ConfigError
from sortkd_cache.losses import ce_loss, kd_loss

pytestmark = pytest.mark.fast

S = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
T = [[2.0, 1.0, 0.0], [0.5, 0.5, 4.0]]
Y = [1, 2]


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _kd_ref(s: list[list[float]], t: list[list[float]], temp: float) -> float:
    p_s = _softmax(np.asarray(s, dtype=np.float64) / temp)
    p_t = _softmax(np.asarray(t, dtype=np.float64) / temp)
    per_row = (p_t * (np.log(p_t) - np.log(p_s))).sum(axis=1)
    return float(per_row.mean() * temp**2)


def test_ce_matches_hand_computation() -> None:
    # row 0: logsumexp(1, 2, 0.5) - 2 ; row 1: logsumexp(0, -1, 3) - 3
    row0 = math.log(math.exp(1.0) + math.exp(2.0) + math.exp(0.5)) - 2.0
    row1 = math.log(math.exp(0.0) + math.exp(-1.0) + math.exp(3.0)) - 3.0
    got = ce_loss(torch.tensor(S), torch.tensor(Y))
    assert got.shape == ()
    assert got.item() == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_ce_float16_student_is_computed_in_float32() -> None:
    got = ce_loss(torch.tensor(S, dtype=torch.float16), torch.tensor(Y))
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(ce_loss(torch.tensor(S), torch.tensor(Y)).item(), rel=1e-6)


@pytest.mark.parametrize("temp", [1.0, 2.0, 4.0])
def test_kd_matches_hand_computation(temp: float) -> None:
    got = kd_loss(torch.tensor(S), torch.tensor(T), temp)
    assert got.shape == ()
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(_kd_ref(S, T, temp), rel=1e-5)


def test_kd_explicit_two_class_value() -> None:
    # One row, two classes, T = 1: p_s = softmax(0, 0) = (1/2, 1/2), p_t = softmax(0, ln 3) =
    # (1/4, 3/4); KL = 1/4 ln(1/2) + 3/4 ln(3/2).
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[0.0, math.log(3.0)]])
    expected = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert kd_loss(s, t, 1.0).item() == pytest.approx(expected, rel=1e-6)
    # T = 2 scales the logits by 1/2 and the result by 4.
    p_t2 = np.array([1.0, math.sqrt(3.0)]) / (1.0 + math.sqrt(3.0))
    expected2 = 4.0 * float((p_t2 * np.log(p_t2 / 0.5)).sum())
    assert kd_loss(s, t, 2.0).item() == pytest.approx(expected2, rel=1e-6)


def test_kd_is_zero_when_student_equals_teacher() -> None:
    x = torch.tensor(S)
    assert kd_loss(x, x.clone(), 4.0).item() == 0.0


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float32, (3, 5), elements=st.floats(-30, 30, width=32)),
    st.floats(0.5, 10.0),
)
def test_kd_zero_on_equal_and_nonnegative(x: np.ndarray, temp: float) -> None:
    a = torch.from_numpy(x)
    assert kd_loss(a, a.clone(), temp).item() == 0.0
    b = torch.from_numpy(x[::-1].copy())
    assert kd_loss(a, b, temp).item() >= -1e-6


def test_kd_gradient_flows_to_student_and_matches_closed_form() -> None:
    temp = 4.0
    s = torch.tensor(S, requires_grad=True)
    t = torch.tensor(T, requires_grad=True)
    kd_loss(s, t, temp).backward()
    assert s.grad is not None
    # d/ds [T^2 * mean_b KL] = T * (p_s - p_t) / B
    p_s = _softmax(np.asarray(S, dtype=np.float64) / temp)
    p_t = _softmax(np.asarray(T, dtype=np.float64) / temp)
    expected = temp * (p_s - p_t) / 2
    np.testing.assert_allclose(s.grad.numpy(), expected, rtol=1e-5, atol=1e-7)
    assert t.grad is None  # the teacher is a fixed target


def test_kd_float16_teacher() -> None:
    t16 = torch.tensor(T, dtype=torch.float16)
    got = kd_loss(torch.tensor(S), t16, 4.0)
    assert got.dtype == torch.float32
    assert got.item() == kd_loss(torch.tensor(S), t16.float(), 4.0).item()
    # Large float16 logits (near the float16 range) stay finite once cast.
    big = torch.tensor([[60000.0, -60000.0, 0.0]], dtype=torch.float16)
    s = torch.zeros(1, 3, requires_grad=True)
    out = kd_loss(s, big, 0.5)
    out.backward()
    assert torch.isfinite(out)
    assert s.grad is not None and torch.isfinite(s.grad).all()


def test_kd_float64_student_stays_float64() -> None:
    s = torch.tensor(S, dtype=torch.float64)
    got = kd_loss(s, torch.tensor(T, dtype=torch.float16), 4.0)
    assert got.dtype == torch.float64


def test_kd_rejects_bad_inputs() -> None:
    s = torch.tensor(S)
    with pytest.raises(ConfigError, match=r"differ in shape"):
        kd_loss(s, torch.zeros(2, 4), 4.0)
    with pytest.raises(ConfigError, match=r"\[B, C\]"):
        kd_loss(torch.zeros(6), torch.zeros(6), 4.0)
    with pytest.raises(ConfigError, match=r"temperature.*0\.0"):
        kd_loss(s, torch.tensor(T), 0.0)
    with pytest.raises(ConfigError, match=r"temperature.*-1"):
        kd_loss(s, torch.tensor(T), -1.0)
    with pytest.raises(ConfigError, match=r"teacher logits must be floating point"):
        kd_loss(s, torch.ones(2, 3, dtype=torch.int64), 4.0)


def test_ce_rejects_bad_target() -> None:
    s = torch.tensor(S)
    with pytest.raises(ConfigError, match=r"int64.*torch.int32"):
        ce_loss(s, torch.tensor(Y, dtype=torch.int32))
    with pytest.raises(ConfigError, match=r"target must be \[B\] = \[2\], got shape \[3\]"):
        ce_loss(s, torch.tensor([0, 1, 2]))
