"""KD and LSKD straight from sparse rows equal the dense formula on the rebuilt row."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sortkd_cache.losses import LossConfig, SparseTeacher, compute_sparse_loss
from sortkd_cache.losses._sparse_kd import ViewTables, direct_applies
from sortkd_cache.losses.kd import _kd
from sortkd_cache.losses.lskd import standardize
from sortkd_cache.sparse import SparseSpec, compress

pytestmark = pytest.mark.fast


def _teacher(c: int, k: int, dtype: str, n: int = 48) -> tuple[SparseTeacher, torch.Tensor]:
    rng = np.random.default_rng(c + k)
    z = (rng.standard_normal((n, c)) * 3).astype(dtype)
    y = rng.integers(0, c, n)
    z[np.arange(n // 2), y[: n // 2]] += 6  # half the labels in the top K, half anywhere
    spec = SparseSpec(k, c, dtype)
    return SparseTeacher.from_rows(spec, compress(z, y, spec)), torch.from_numpy(y)


def _reference(
    name: str, tail: str, s: torch.Tensor, teacher: SparseTeacher, y: torch.Tensor, t: float
) -> torch.Tensor:
    """The dense formula on the rebuilt row (what the direct path claims to equal)."""
    cfg = LossConfig(name=name, temperature=t)
    z = standardize(s) if name == "lskd" else s
    shape = z.detach() if tail == "bucket" else None
    r = teacher.dense(y, t, standardized=name == "lskd", shape=shape).to(s.dtype)
    ce = torch.nn.functional.cross_entropy(s, y)
    return cfg.ce_weight * ce + cfg.kd_weight * _kd(z, r, t)  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("tail", ["bucket", "uniform"])
@pytest.mark.parametrize("name", ["kd", "lskd"])
@pytest.mark.parametrize(("c", "k"), [(30, 4), (10, 8)])
def test_value_and_gradient_equal_the_rebuilt_row(
    name: str, tail: str, dtype: torch.dtype, c: int, k: int
) -> None:
    teacher, y = _teacher(c, k, "float16")
    n = len(y)
    view = ViewTables(teacher, y)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    temps = teacher.spec.lskd_temperatures if name == "lskd" else teacher.spec.temperatures
    for t in temps:
        assert direct_applies(teacher.spec, t, standardized=name == "lskd")
        cfg = LossConfig(name=name, temperature=t)
        s0 = torch.randn(n, c, dtype=dtype, generator=torch.Generator().manual_seed(1)) * 3
        batch = SparseTeacher(
            teacher.spec, teacher.ids[perm], teacher.values[perm], teacher.stats[perm], view, perm
        )
        got = []
        for rows, order in ((teacher, torch.arange(n)), (batch, perm)):
            # tables made per batch, and tables of the view gathered by index
            s = s0[order].clone().requires_grad_(True)
            loss, parts = compute_sparse_loss(cfg, s, rows, y[order], epoch=1, tail=tail)
            loss.backward()
            assert s.grad is not None and abs(sum(parts.values()) - float(loss.detach())) < 1e-4
            grad = torch.empty_like(s.grad)
            grad[order] = s.grad
            got.append((loss.detach(), grad))
        s = s0.clone().requires_grad_(True)
        want = _reference(name, tail, s, teacher, y, t)
        want.backward()
        assert s.grad is not None
        for loss, grad in got:
            torch.testing.assert_close(loss, want.detach(), rtol=2e-6, atol=1e-6)
            torch.testing.assert_close(grad, s.grad, rtol=1e-5, atol=1e-7)


def test_other_temperatures_and_losses_take_the_rebuilt_row() -> None:
    teacher, y = _teacher(30, 4, "float32")
    assert not direct_applies(teacher.spec, 3.0, standardized=False)
    assert not direct_applies(teacher.spec, 4.0, standardized=True)  # LSKD records T=2 only
    assert not direct_applies(SparseSpec(9, 10), 4.0, standardized=False)  # K = C - 1
    cfg = LossConfig(name="kd", temperature=3.0)
    s = torch.randn(len(y), 30)
    got, _ = compute_sparse_loss(cfg, s, teacher, y, epoch=1, tail="bucket")
    want = _reference("kd", "bucket", s, teacher, y, 3.0)
    torch.testing.assert_close(got, want)


def test_a_batch_whose_targets_are_not_the_views_labels_gets_its_own_tables() -> None:
    teacher, y = _teacher(30, 4, "float16")
    view = ViewTables(teacher, y)
    idx = torch.arange(len(y))
    other = (y + 1) % 30  # e.g. a caller's own targets
    batch = SparseTeacher(teacher.spec, teacher.ids, teacher.values, teacher.stats, view, idx)
    s = torch.randn(len(y), 30)
    cfg = LossConfig(name="kd")
    got, _ = compute_sparse_loss(cfg, s, batch, other, epoch=1, tail="bucket")
    want, _ = compute_sparse_loss(cfg, s, teacher, other, epoch=1, tail="bucket")
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got, _reference("kd", "bucket", s, teacher, other, 4.0))


def test_bad_student_is_refused() -> None:
    from sortkd_cache.errors import ConfigError

    teacher, y = _teacher(30, 4, "float16")
    with pytest.raises(ConfigError, match="differ in shape"):
        compute_sparse_loss(LossConfig(name="kd"), torch.randn(len(y), 31), teacher, y, epoch=1)
    with pytest.raises(ConfigError, match="unknown sparse tail"):
        compute_sparse_loss(
            LossConfig(name="kd"), torch.randn(len(y), 30), teacher, y, epoch=1, tail="x"
        )
