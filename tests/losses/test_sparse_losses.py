"""Losses from sparse rows: exact on what is recorded, within the documented bound elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sortkd_cache.errors import ConfigError
from sortkd_cache.losses import LossConfig, SparseTeacher, compute_loss, compute_sparse_loss
from sortkd_cache.losses.kd import _kd
from sortkd_cache.losses.lskd import standardize
from sortkd_cache.sparse import (
    FidelityAccumulator,
    SparseSpec,
    compress,
    rebuild_dense,
    tail_mass,
)

pytestmark = pytest.mark.fast


def teacher_rows(
    n: int = 64, c: int = 50, k: int = 5, dtype: str = "float32", seed: int = 0
) -> tuple[np.ndarray, np.ndarray, SparseSpec]:
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((n, c)) * 3).astype(dtype)
    y = rng.integers(0, c, n)
    z[np.arange(n // 2), y[: n // 2]] += 6  # half the labels on top, half anywhere
    return z, y, SparseSpec(k, c, dtype)


@pytest.mark.parametrize("dtype", ["float16", "float32"])
@pytest.mark.parametrize("standardized", [False, True])
def test_kept_probabilities_and_tail_mass_are_exact(dtype: str, standardized: bool) -> None:
    z, y, spec = teacher_rows(dtype=dtype)
    rows = compress(z, y, spec)
    target = torch.from_numpy(y)
    temps = spec.lskd_temperatures if standardized else spec.temperatures
    dense = torch.from_numpy(z).double()
    if standardized:
        dense = standardize(dense)
    tol = 2e-3 if dtype == "float16" else 1e-5  # one rounding of each stored number
    for t in temps:
        ids = torch.from_numpy(rows.ids.astype(np.int64))
        r = rebuild_dense(
            spec,
            ids,
            torch.from_numpy(rows.values),
            torch.from_numpy(rows.stats),
            target,
            t,
            standardized=standardized,
            dtype=torch.float64,
        )
        p, q = torch.softmax(dense / t, 1), torch.softmax(r / t, 1)
        kept = torch.zeros_like(p, dtype=torch.bool).scatter_(1, ids, True)
        kept.scatter_(1, target[:, None], True)
        torch.testing.assert_close(q[kept], p[kept], rtol=tol, atol=1e-7)
        torch.testing.assert_close((q * ~kept).sum(1), (p * ~kept).sum(1), rtol=tol, atol=1e-7)
        if not standardized:
            mass = tail_mass(spec, rows, t)
            top = torch.zeros_like(p, dtype=torch.bool).scatter_(1, ids, True)
            torch.testing.assert_close(mass, (p * ~top).sum(1), rtol=tol, atol=1e-7)


@pytest.mark.parametrize("tail", ["bucket", "uniform"])
@pytest.mark.parametrize("name", ["kd", "dkd", "lskd", "ctkd", "ce"])
def test_sparse_loss_is_the_dense_formula_on_the_rebuilt_row(name: str, tail: str) -> None:
    z, y, spec = teacher_rows(dtype="float16")
    teacher = SparseTeacher.from_rows(spec, compress(z, y, spec))
    cfg = LossConfig(name=name)
    target = torch.from_numpy(y)
    student = torch.randn(len(y), spec.num_classes, generator=torch.Generator().manual_seed(1))
    module = None
    if name == "ctkd":
        from sortkd_cache.losses import make_temperature_module

        module = make_temperature_module(cfg)
    got, parts = compute_sparse_loss(
        cfg, student, teacher, target, epoch=3, temperature_module=module, tail=tail
    )
    if name == "lskd":
        shape = standardize(student) if tail == "bucket" else None
        r = teacher.dense(target, cfg.temperature, standardized=True, shape=shape)
        kd = cfg.kd_weight * _kd(standardize(student), r, cfg.temperature)
        want = cfg.ce_weight * torch.nn.functional.cross_entropy(student, target) + kd
    else:
        # the loss's own temperature; ctkd: the recorded one nearest its initial ~15.6
        temp = 4.0 if name == "ctkd" else getattr(cfg, "temperature", 4.0)
        r = teacher.dense(target, temp, shape=student if tail == "bucket" else None)
        want, _ = compute_loss(cfg, student, r, target, epoch=3, temperature_module=module)
    torch.testing.assert_close(got, want)
    assert abs(sum(parts.values()) - float(got.detach())) < 1e-4


def test_bucket_is_kl_over_kept_classes_and_one_tail_bucket() -> None:
    """With the student-shaped tail, KD is exactly KL over (kept classes, the tail as a whole)."""
    z, y, spec = teacher_rows(n=16, c=40, k=6, dtype="float32")
    rows = compress(z, y, spec)
    teacher = SparseTeacher.from_rows(spec, rows)
    target = torch.from_numpy(y)
    s = torch.randn(16, 40, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for t in spec.temperatures:
        tt = teacher
        r = rebuild_dense(spec, tt.ids, tt.values, tt.stats, target, t, shape=s, dtype=s.dtype)
        got = _kd(s, r, t) / t**2
        p = torch.softmax(torch.from_numpy(z).double() / t, 1)
        q = torch.softmax(s / t, 1)
        kept = torch.zeros_like(p, dtype=torch.bool)
        kept.scatter_(1, torch.from_numpy(rows.ids.astype(np.int64)), True)
        kept.scatter_(1, target[:, None], True)
        m, big_q = (p * ~kept).sum(1), (q * ~kept).sum(1)
        per_row = (torch.where(kept, p * (p.log() - q.log()), 0.0)).sum(1) + m * (m / big_q).log()
        torch.testing.assert_close(got, per_row.mean(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("tail", ["bucket", "uniform"])
@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_kd_gradient_is_within_the_documented_bound(temperature: float, tail: str) -> None:
    """|grad(sparse KD) - grad(dense KD)|_1 per row <= 2 T m / B (m: the teacher's tail mass)."""
    z, y, spec = teacher_rows(n=32, c=100, k=10)
    rows = compress(z, y, spec)
    target = torch.from_numpy(y)
    teacher = SparseTeacher.from_rows(spec, rows)
    grads = []
    s0 = torch.randn(32, 100, generator=torch.Generator().manual_seed(2))
    for sparse in (False, True):
        s = s0.clone().requires_grad_(True)
        shape = s0 if tail == "bucket" else None
        t = teacher.dense(target, temperature, shape=shape) if sparse else torch.from_numpy(z)
        (_kd(s, t.float(), temperature)).backward()
        assert s.grad is not None
        grads.append(s.grad)
    diff = (grads[0] - grads[1]).abs().sum(1)
    bound = 2 * temperature * tail_mass(spec, rows, temperature) / 32
    assert (diff <= bound.float() * (1 + 1e-4) + 1e-7).all()
    assert float(diff.max()) > 0  # the tail is not the teacher's: the bound is not vacuous


def test_fidelity_record() -> None:
    z, y, spec = teacher_rows(n=40, c=30, k=3, dtype="float16")
    acc = FidelityAccumulator(spec, num_views=2)
    rows = compress(z, y, spec)
    acc.add(0, z, y, rows)
    acc.add(1, z[:20], y[:20], rows[:20])
    rec = acc.result()
    assert (
        rec["k"] == 3 and rec["bytes_per_sample_view"] == 3 * (1 + 2) + 7 * 2
    )  # uint8 ids, float16
    assert rec["per_view"][0]["rows"] == 40
    kls = [rec["mean_kl"][f"{t:g}"] for t in spec.temperatures]
    assert all(v > 0 for v in kls)
    outside = (~(rows.ids.astype(int) == y[:, None]).any(1)).mean()
    assert rec["per_view"][0]["label_outside_topk"] == pytest.approx(outside)
    again = FidelityAccumulator(spec, num_views=2)
    again.merge(rec)
    assert again.result() == rec


@pytest.mark.parametrize("k", [0, -1, 10, 11, 2.5, True])
def test_bad_k_is_refused(k: object) -> None:
    with pytest.raises(ConfigError, match="--topk"):
        SparseSpec(k, 10)  # type: ignore[arg-type]


def test_size_target() -> None:
    """4K + 16 bytes per sample-view at most for float16 and C <= 65,536."""
    for c, k in ((100, 10), (1000, 100), (65_536, 5), (256, 1)):
        assert SparseSpec(k, c).bytes_per_row <= 4 * k + 16


def test_the_format_uses_lskds_epsilon() -> None:
    from sortkd_cache.losses.lskd import STANDARDIZE_EPS
    from sortkd_cache.sparse import _compress

    assert _compress.STANDARDIZE_EPS == STANDARDIZE_EPS


@pytest.mark.parametrize("standardized", [False, True])
def test_a_learnt_temperature_rebuilds_on_its_device_as_its_value_does(standardized: bool) -> None:
    """CTKD's learnt temperature (a tensor) picks the nearest recorded tail on its device:
    the same rows as its value read on the host (the code before), ties included (sqrt 2 in
    float64 lies between 1 and 2: the lower),
    below and above the recorded ones; with every tensor on the meta device (no values to
    read) it still runs, so a training step does not wait for the temperature on the host."""
    z, y, spec = teacher_rows()
    rows = compress(z, y, spec)
    args = (
        spec, torch.from_numpy(rows.ids.astype(np.int64)), torch.from_numpy(rows.values),
        torch.from_numpy(rows.stats), torch.from_numpy(y),
    )  # fmt: skip
    for t in (0.3, 1.0, 2.0**0.5, 2.9, 3.0, 4.0, 15.6, 100.0):
        for learnt in (torch.tensor(t), torch.tensor(t, dtype=torch.float64)):
            want = rebuild_dense(*args, float(learnt), standardized=standardized)
            got = rebuild_dense(*args, learnt, standardized=standardized)
            assert torch.equal(got, want), (t, learnt.dtype)
    meta = tuple(a.to("meta") if isinstance(a, torch.Tensor) else a for a in args)
    out = rebuild_dense(*meta, torch.tensor(4.0, device="meta"), standardized=standardized)
    assert out.device.type == "meta" and out.shape == (len(y), spec.num_classes)
