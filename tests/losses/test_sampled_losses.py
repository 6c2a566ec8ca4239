"""The sampled kind's losses are unbiased: averaged over many independent draws, the KD, LSKD
and DKD estimates and their gradients with respect to the student equal the dense ones within
a bound computed from the draws' own spread (K standard errors), at the proposal temperature
and, importance-weighted, at another recorded one; for plain rows (S draws) and hybrid rows
(the top H exact, S draws from the rest, weighted by the rest's mass); with either handling of
the classes the draws do not name (``student``: the student's own probabilities as a control
variate, the default; ``counts``: the draws' counts as the target). The student's control
variate has less spread the closer the student is to the teacher, and its scale is independent
of a row's own draws. Sorting sampled rows equals sampling the sorted dense rows with the same
draws."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from sortkd_cache.errors import ConfigError
from sortkd_cache.losses import SampledTeacher
from sortkd_cache.losses._sampled_rows import _scale
from sortkd_cache.losses.dkd import dkd_loss
from sortkd_cache.losses.kd import kd_loss
from sortkd_cache.losses.lskd import lskd_loss
from sortkd_cache.sorting import sort_logits
from sortkd_cache.sparse import SAMPLED_TAILS, SampledSpec, relabel, sample_rows

pytestmark = pytest.mark.fast

torch.set_num_threads(1)
B, C, S, REPLICATES = 6, 12, 8, 4000
#: (H, S): plain rows, and hybrid rows (the top 4 exact, 6 draws from the other 8 classes)
ROWS = [(0, S), (4, 6)]
#: standard errors allowed: with about 160 compared means, 5 SE leaves a false alarm at
#: about 1e-4 per run (two-sided normal tail 5.7e-7 each)
K = 5.0
#: float32 rounding of the compared values (entries that do not depend on the draws, such
#: as DKD's exact target-class part, have no spread to hide it)
ATOL = 1e-5


def _rows(seed: int = 0) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], torch.Tensor]:
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((B, C)) * 2.5).astype(np.float32)
    y = rng.integers(0, C, B)
    s = torch.from_numpy(rng.standard_normal((B, C))).float()
    return z, y, s


def _teacher(
    z: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
    rows: tuple[int, int] = (0, S),
    tail: str = "student",
) -> SampledTeacher:
    """REPLICATES independent sampled copies of the rows, replicate-major."""
    head, draws = rows
    spec = SampledSpec(draws=draws, num_classes=C, dtype="float32", seed=3, head=head)
    zz, yy = np.tile(z, (REPLICATES, 1)), np.tile(y, REPLICATES)
    rows = sample_rows(zz, yy, spec, np.arange(len(yy)), view=0)
    t = torch.from_numpy
    ids = t(rows.ids.astype(np.int64))
    return SampledTeacher(spec, ids, t(rows.counts), t(rows.values), t(rows.stats), tail)


def _per_row(loss: Callable[[torch.Tensor], torch.Tensor], s: torch.Tensor) -> tuple[Any, Any]:
    """Each row's loss [N] and its gradient with respect to that row's logits [N, C]."""
    student = s.clone().requires_grad_(True)
    values = loss(student)
    (grad,) = torch.autograd.grad(values.sum(), student)
    return values.detach().double().numpy(), grad.double().numpy()


def _check_unbiased(sampled: tuple[Any, Any], dense: tuple[Any, Any], what: str) -> None:
    for est, want, name in zip(sampled, dense, ("loss", "gradient"), strict=True):
        reps = est.reshape(REPLICATES, B, *est.shape[1:])
        mean, se = reps.mean(axis=0), reps.std(axis=0, ddof=1) / np.sqrt(REPLICATES)
        off = np.maximum(np.abs(mean - want) - ATOL, 0.0)
        z = off / np.maximum(se, 1e-300)
        assert (off <= K * se).all(), f"{what} {name}: {z.max():.2f} standard errors from dense"
        assert (se > 0).any(), f"{what} {name}: the draws do not vary"


def _dense_rows(fn: Callable[..., torch.Tensor], s: torch.Tensor, *args: Any) -> tuple[Any, Any]:
    outs = [_per_row(lambda x, i=i: fn(x, *(a[i : i + 1] for a in args))[None], s[i : i + 1])
            for i in range(B)]  # fmt: skip
    return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])


@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("temperature", [4.0, 2.0])
@pytest.mark.parametrize("tail", SAMPLED_TAILS)
def test_kd_loss_and_gradient_are_unbiased(
    temperature: float, rows: tuple[int, int], tail: str
) -> None:
    z, y, s = _rows()
    teacher = _teacher(z, y, rows, tail)
    sampled = _per_row(lambda x: teacher.kd_rows(x, temperature), s.repeat(REPLICATES, 1))
    zt = torch.from_numpy(z)
    dense = _dense_rows(lambda x, t: kd_loss(x, t, temperature), s, zt)
    _check_unbiased(sampled, dense, f"KD at T={temperature:g}, {tail}")


@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("tail", SAMPLED_TAILS)
def test_lskd_loss_and_gradient_are_unbiased(rows: tuple[int, int], tail: str) -> None:
    z, y, s = _rows(1)
    teacher = _teacher(z, y, rows, tail)
    lskd = teacher.kd_rows
    sampled = _per_row(lambda x: lskd(x, 2.0, standardized=True), s.repeat(REPLICATES, 1))
    dense = _dense_rows(lambda x, t: lskd_loss(x, t, 2.0), s, torch.from_numpy(z))
    _check_unbiased(sampled, dense, f"LSKD at T=2, {tail}")


@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("tail", SAMPLED_TAILS)
def test_dkd_loss_and_gradient_are_unbiased(rows: tuple[int, int], tail: str) -> None:
    z, y, s = _rows(2)
    teacher = _teacher(z, y, rows, tail)
    yt = torch.from_numpy(y)
    rep_y = yt.repeat(REPLICATES)
    sampled = _per_row(lambda x: teacher.dkd_rows(x, rep_y, 1.0, 8.0, 4.0), s.repeat(REPLICATES, 1))
    dense = _dense_rows(
        lambda x, t, yy: dkd_loss(x, t, yy, 1.0, 8.0, 4.0), s, torch.from_numpy(z), yt
    )
    _check_unbiased(sampled, dense, f"DKD at T=4, {tail}")


def test_one_draw_set_is_not_the_dense_loss() -> None:
    """The bound is not vacuous: a single set of draws is measurably off the dense gradient;
    the hybrid rows' error is smaller (the head is exact: its gradient has no spread, and the
    draws' noise is scaled by the rest's mass)."""
    z, y, s = _rows()
    dense = _dense_rows(lambda x, t: kd_loss(x, t, 4.0), s, torch.from_numpy(z))[1]
    errors = []
    for rows in ROWS:
        teacher = _teacher(z, y, rows, "counts")
        est = _per_row(lambda x, t=teacher: t.kd_rows(x, 4.0), s.repeat(REPLICATES, 1))[1]
        errors.append(((est.reshape(REPLICATES, B, C) - dense) ** 2).sum(axis=2).mean())
        assert np.abs(est[:B] - dense).max() > 1e-3
    assert errors[1] < errors[0]


def _gradient_error(z: Any, y: Any, s: torch.Tensor, tail: str, rows: tuple[int, int]) -> float:
    """Mean squared distance of one draw set's KD gradient (T = 4) from the dense one."""
    dense = _dense_rows(lambda x, t: kd_loss(x, t, 4.0), s, torch.from_numpy(z))[1]
    teacher = _teacher(z, y, rows, tail)
    est = _per_row(lambda x: teacher.kd_rows(x, 4.0), s.repeat(REPLICATES, 1))[1]
    return float(((est.reshape(REPLICATES, B, C) - dense) ** 2).sum(axis=2).mean())


@pytest.mark.parametrize("rows", ROWS)
def test_the_student_control_variate_has_less_spread_near_the_teacher(
    rows: tuple[int, int],
) -> None:
    """The student's own probabilities as the control variate: the closer the student is to
    the teacher, the smaller the gradient's spread, below the counts estimator's (whose spread
    does not depend on the student); a student far from it falls back towards counts."""
    z, y, far = _rows()
    zt = torch.from_numpy(z)
    near = zt + 0.3 * far  # the teacher's logits, slightly off
    counts = _gradient_error(z, y, near, "counts", rows)
    student_near = _gradient_error(z, y, near, "student", rows)
    student_exact = _gradient_error(z, y, zt.clone(), "student", rows)
    assert student_exact < 0.05 * counts
    assert student_exact < student_near < 0.5 * counts
    assert _gradient_error(z, y, far * 4.0, "student", rows) < 2.0 * counts


def test_the_scale_of_a_row_ignores_its_own_draws() -> None:
    """Each row's control-variate scale comes from the other rows only (so its estimate stays
    unbiased): changing a row's own draw statistic leaves its scale as it was."""
    mass = torch.tensor([0.5, 0.4, 0.6, 0.3], dtype=torch.float64)
    second = torch.tensor([0.6, 0.5, 2.0, 0.2], dtype=torch.float64)
    lam = _scale(mass, second)
    assert torch.allclose(lam[0], (mass.sum() - mass[0]) / (second.sum() - second[0]))
    moved = _scale(mass, second.clone().index_fill_(0, torch.tensor([0]), 50.0))
    assert torch.isclose(moved[0], lam[0], rtol=1e-12) and (moved[1:] < lam[1:]).all()
    assert _scale(mass[:1], second[:1]).tolist() == [0.0]  # a batch of one row: counts
    assert ((lam >= 0) & (lam <= 1)).all()


def test_an_unrecorded_temperature_is_refused() -> None:
    z, y, s = _rows()
    with pytest.raises(ConfigError, match=r"temperature 3 is not recorded"):
        _teacher(z, y).kd_rows(s.repeat(REPLICATES, 1), 3.0)


def test_sorting_sampled_rows_equals_sampling_the_sorted_rows() -> None:
    rng = np.random.default_rng(5)
    n, c = 400, 30
    z = (rng.standard_normal((n, c)) * 3).astype(np.float32)
    y = rng.integers(0, c, n)
    spec = SampledSpec(draws=16, num_classes=c, dtype="float32", seed=11)
    raw = sample_rows(z, y, spec, np.arange(100, 100 + n), view=2)
    from_sorted = sample_rows(sort_logits(z, y), y, spec, np.arange(100, 100 + n), view=2)
    moved = relabel("sort", raw, y, spec)
    for got, want in zip(moved.arrays(), from_sorted.arrays(), strict=True):
        assert np.array_equal(got.view(np.uint8), want.view(np.uint8))
    assert not np.array_equal(raw.ids, moved.ids)  # the label was not first in every row
    with pytest.raises(ConfigError, match="'swap' cannot be applied to sampled rows"):
        relabel("swap", raw, y, spec)


def test_a_tail_the_sampled_rows_do_not_take_is_refused() -> None:
    z, y, _ = _rows()
    rows = _teacher(z, y)
    assert rows.with_tail("counts").tail == "counts"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"'uniform'; use student or counts"):
        rows.with_tail("uniform")
