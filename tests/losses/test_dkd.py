from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sortkd_cache.errors import ConfigError
from sortkd_cache.losses import dkd_loss, dkd_warmup_factor

pytestmark = pytest.mark.fast


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _kl_sum(log_q: np.ndarray, p: np.ndarray) -> float:
    """sum over all entries of p * (log p - log q), with 0 * log 0 = 0 (F.kl_div, sum)."""
    logp = np.log(np.where(p > 0, p, 1.0))
    return float(np.where(p > 0, p * (logp - log_q), 0.0).sum())


def _dkd_ref(
    s: list[list[float]], t: list[list[float]], y: list[int], a: float, b: float, temp: float
) -> float:
    """mdistiller's dkd_loss, written out in float64 numpy."""
    s_ = np.asarray(s, dtype=np.float64)
    t_ = np.asarray(t, dtype=np.float64)
    batch = s_.shape[0]
    gt = np.zeros_like(s_)
    gt[np.arange(batch), y] = 1.0
    other = 1.0 - gt
    p_s = _softmax(s_ / temp)
    p_t = _softmax(t_ / temp)
    b_s = np.stack([(p_s * gt).sum(1), (p_s * other).sum(1)], axis=1)
    b_t = np.stack([(p_t * gt).sum(1), (p_t * other).sum(1)], axis=1)
    tckd = _kl_sum(np.log(b_s), b_t) * temp**2 / batch
    q_t = _softmax(t_ / temp - 1000.0 * gt)
    z = s_ / temp - 1000.0 * gt
    log_q_s = z - z.max(1, keepdims=True)
    log_q_s = log_q_s - np.log(np.exp(log_q_s).sum(1, keepdims=True))
    nckd = _kl_sum(log_q_s, q_t) * temp**2 / batch
    return a * tckd + b * nckd


S = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
T = [[2.0, 1.0, 0.0], [0.5, 0.5, 4.0]]
Y = [1, 2]


@pytest.mark.parametrize(
    ("alpha", "beta", "temp"), [(1.0, 8.0, 4.0), (1.0, 1.0, 1.0), (2.0, 0.5, 2.0)]
)
def test_dkd_matches_mdistiller_formula(alpha: float, beta: float, temp: float) -> None:
    got = dkd_loss(torch.tensor(S), torch.tensor(T), torch.tensor(Y), alpha, beta, temp)
    assert got.shape == ()
    assert got.item() == pytest.approx(_dkd_ref(S, T, Y, alpha, beta, temp), rel=1e-5)


def test_dkd_explicit_three_class_value() -> None:
    # One row, T = 1, target 0. Student logits (0, 0, 0): b_s = (1/3, 2/3), q_s = (1/2, 1/2).
    # Teacher logits (ln 2, ln 1, ln 3): p_t = (2/6, 1/6, 3/6) -> b_t = (1/3, 2/3) so TCKD = 0;
    # q_t = (1/4, 3/4) -> NCKD = 1/4 ln(1/2) + 3/4 ln(3/2).
    s = torch.zeros(1, 3)
    t = torch.tensor([[math.log(2.0), 0.0, math.log(3.0)]])
    y = torch.tensor([0])
    nckd = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert dkd_loss(s, t, y, 1.0, 1.0, 1.0).item() == pytest.approx(nckd, rel=1e-5)
    assert dkd_loss(s, t, y, 5.0, 2.0, 1.0).item() == pytest.approx(2.0 * nckd, rel=1e-5)
    assert dkd_loss(s, t, y, 1.0, 0.0, 1.0).item() == pytest.approx(0.0, abs=1e-6)


def test_dkd_larger_batch_against_reference() -> None:
    rng = np.random.default_rng(0)
    s = rng.normal(0, 3, (8, 10)).tolist()
    t = rng.normal(0, 3, (8, 10)).tolist()
    y = rng.integers(0, 10, 8).tolist()
    got = dkd_loss(torch.tensor(s), torch.tensor(t), torch.tensor(y), 1.0, 8.0, 4.0)
    assert got.item() == pytest.approx(_dkd_ref(s, t, y, 1.0, 8.0, 4.0), rel=1e-5)


def test_dkd_zero_when_student_equals_teacher() -> None:
    x = torch.tensor(S)
    assert dkd_loss(x, x.clone(), torch.tensor(Y), 1.0, 8.0, 4.0).item() == pytest.approx(
        0.0, abs=1e-6
    )


def test_dkd_gradient_flows_to_student_only() -> None:
    s = torch.tensor(S, requires_grad=True)
    t = torch.tensor(T, requires_grad=True)
    dkd_loss(s, t, torch.tensor(Y), 1.0, 8.0, 4.0).backward()
    assert s.grad is not None
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    assert t.grad is None


def test_dkd_float16_teacher() -> None:
    t16 = torch.tensor(T, dtype=torch.float16)
    y = torch.tensor(Y)
    got = dkd_loss(torch.tensor(S), t16, y, 1.0, 8.0, 4.0)
    assert got.dtype == torch.float32
    assert got.item() == dkd_loss(torch.tensor(S), t16.float(), y, 1.0, 8.0, 4.0).item()
    # Teacher logits near the float16 limit with T = 1: -1000 must not be applied in float16.
    big = torch.tensor([[60000.0, -60000.0, 0.0]], dtype=torch.float16)
    s = torch.zeros(1, 3, requires_grad=True)
    out = dkd_loss(s, big, torch.tensor([1]), 1.0, 8.0, 1.0)
    out.backward()
    assert torch.isfinite(out)
    assert s.grad is not None and torch.isfinite(s.grad).all()


def test_dkd_stays_finite_when_target_probability_underflows() -> None:
    # p_gt of the student underflows to 0 in float32; mdistiller's log(sum p) would be -inf.
    s = torch.tensor([[-200.0, 0.0, 0.0]], requires_grad=True)
    t = torch.tensor([[2.0, 0.0, 0.0]])
    out = dkd_loss(s, t, torch.tensor([0]), 1.0, 8.0, 1.0)
    out.backward()
    assert torch.isfinite(out) and out.item() > 0
    assert s.grad is not None and torch.isfinite(s.grad).all()


def test_dkd_warmup_factor() -> None:
    assert dkd_warmup_factor(1, 20) == pytest.approx(0.05)
    assert dkd_warmup_factor(10, 20) == pytest.approx(0.5)
    assert dkd_warmup_factor(20, 20) == 1.0
    assert dkd_warmup_factor(200, 20) == 1.0
    assert dkd_warmup_factor(0, 20) == 0.0
    assert dkd_warmup_factor(1, 0) == 1.0


def test_dkd_rejects_bad_inputs() -> None:
    with pytest.raises(ConfigError, match=r"at least 2 classes, got 1"):
        dkd_loss(torch.zeros(2, 1), torch.zeros(2, 1), torch.tensor([0, 0]), 1.0, 8.0, 4.0)
    with pytest.raises(ConfigError, match=r"target must be \[B\]"):
        dkd_loss(torch.tensor(S), torch.tensor(T), torch.tensor([1]), 1.0, 8.0, 4.0)
    with pytest.raises(ConfigError, match=r"temperature"):
        dkd_loss(torch.tensor(S), torch.tensor(T), torch.tensor(Y), 1.0, 8.0, 0.0)
