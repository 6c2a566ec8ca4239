"""The quantized row (``sortkd_cache.sparse._quant``): every class's logit in B bits.

Read back within half a step of the logit (the maximum exactly), the codes packed and unpacked
losslessly, numpy and torch reading back the same float32 values, ``sort``/``swap`` on the codes
equal to the reference sort of the values read back (bit for bit, ties included), the spec's
record and its bad values refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sortkd_cache.data import dequantize_tensor
from sortkd_cache.errors import ConfigError
from sortkd_cache.sorting import apply_with_stats
from sortkd_cache.sparse import (
    QuantRows,
    QuantSpec,
    apply_quant,
    dequantize,
    quant_fidelity,
    quant_problems,
    quantize_rows,
    spec_of_record,
    unpack_codes,
)
from sortkd_cache.sparse._quant import _pack

torch.set_num_threads(1)

FINITE = st.floats(-60.0, 60.0, width=32, allow_nan=False, allow_subnormal=False)


def _rows(draw_shape: tuple[int, int]) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.float32, draw_shape, elements=FINITE)


@settings(max_examples=60, deadline=None)
@given(
    z=_rows((7, 13)),
    bits=st.integers(2, 8),
    dtype=st.sampled_from(["float16", "float32"]),
)
def test_read_back_is_within_half_a_step_and_the_max_is_exact(
    z: np.ndarray, bits: int, dtype: str
) -> None:
    spec = QuantSpec(bits, 13, dtype)
    zz = z.astype(dtype)
    rows = quantize_rows(zz, spec)
    assert rows.codes.shape == (7, spec.code_bytes) and rows.codes.dtype == np.uint8
    back = dequantize(rows, spec).astype(np.float64)
    step = rows.stats[:, 1].astype(np.float64)
    err = np.abs(back - zz.astype(np.float64))
    # half a step, plus the float32 read-back's rounding and the step's rounding to dtype
    slack = 1e-3 * (1.0 + np.abs(zz.astype(np.float64)).max(axis=1))
    rounding = spec.levels * np.abs(step - (zz.max(1) - zz.min(1)) / spec.levels)
    assert (err.max(axis=1) <= step / 2 + rounding + slack).all()
    assert np.array_equal(back.max(axis=1), zz.max(axis=1).astype(np.float64))
    assert (unpack_codes(rows.codes, spec) <= spec.levels).all()
    assert quant_problems(spec, rows, np.zeros(7, np.int64)) == []


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(2, 8), c=st.integers(2, 19), data=st.data())
def test_codes_pack_and_unpack_losslessly(bits: int, c: int, data: st.DataObject) -> None:
    spec = QuantSpec(bits, c, "float32")
    codes = data.draw(arrays(np.int64, (5, c), elements=st.integers(0, spec.levels)))
    packed = _pack(codes, spec)
    assert packed.shape == (5, -(-c * bits // 8))
    assert np.array_equal(unpack_codes(packed, spec), codes)
    assert quant_problems(spec, QuantRows(packed, np.ones((5, 2))), np.zeros(5)) == []


@pytest.mark.parametrize("bits", [2, 3, 5, 8])
@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_torch_reads_back_the_numpy_values(bits: int, dtype: str) -> None:
    z = np.random.default_rng(bits).normal(0, 5, (64, 37)).astype(dtype)
    spec = QuantSpec(bits, 37, dtype)
    rows = quantize_rows(z, spec)
    got = dequantize_tensor(spec, torch.from_numpy(rows.codes), torch.from_numpy(rows.stats))
    assert got.dtype == torch.float32
    assert np.array_equal(got.numpy(), dequantize(rows, spec))


@pytest.mark.parametrize("method", ["sort", "swap"])
def test_a_method_on_the_codes_equals_it_on_the_values_read_back(method: str) -> None:
    """Ties are many at 2 bits: the codes' method follows the sorting tie rule exactly."""
    rng = np.random.default_rng(0)
    for bits in (2, 3, 6):
        z = rng.normal(0, 4, (200, 20)).astype(np.float32)
        y = rng.integers(0, 20, 200)
        spec = QuantSpec(bits, 20, "float32")
        rows = quantize_rows(z, spec)
        moved, rank, top = apply_quant(method, rows, y, spec)
        want = apply_with_stats(method, dequantize(rows, spec), y)
        assert np.array_equal(dequantize(moved, spec), want.out)
        assert np.array_equal(top, want.top)
        back = dequantize(rows, spec)
        strictly_above = (back > back[np.arange(200), y][:, None]).sum(axis=1)
        assert np.array_equal(rank, strictly_above)
        assert np.array_equal(moved.stats, rows.stats)


def test_fidelity_sums_are_the_kl_and_the_largest_error() -> None:
    z = np.random.default_rng(1).normal(0, 3, (50, 10)).astype(np.float32)
    spec = QuantSpec(3, 10, "float32", temperatures=(1.0, 4.0))
    rows = quantize_rows(z, spec)
    sums = quant_fidelity(spec, z, rows)
    back = dequantize(rows, spec).astype(np.float64)
    lp = torch.log_softmax(torch.from_numpy(z.astype(np.float64)) / 4.0, 1)
    lq = torch.log_softmax(torch.from_numpy(back) / 4.0, 1)
    kl4 = float((lp.exp() * (lp - lq)).sum())
    assert sums.shape == (4,) and sums[-1] == 50
    assert sums[1] == pytest.approx(kl4, rel=1e-9) and sums[0] > sums[1] > 0
    assert sums[2] == pytest.approx(np.abs(back - z).max())


def test_problems_name_a_bad_step_and_padding_bits() -> None:
    spec = QuantSpec(3, 10, "float32")  # 30 bits: 2 padding bits in the last byte
    rows = quantize_rows(np.random.default_rng(2).normal(size=(4, 10)).astype(np.float32), spec)
    codes, stats = rows.codes.copy(), rows.stats.copy()
    codes[2, -1] |= 0x80
    stats[1, 1] = -1.0
    stats[3, 0] = np.nan
    found = quant_problems(spec, QuantRows(codes, stats), np.zeros(4, np.int64))
    assert found == [
        "row 3: a non-finite max or step",
        "row 1: a negative step",
        "row 2: padding bits set after the last code",
    ]


def test_the_record_round_trips_and_bad_values_are_refused() -> None:
    spec = QuantSpec(3, 100, "float16")
    assert spec.bytes_per_row == 38 + 4 and spec.levels == 7
    assert spec_of_record(spec.to_dict()) == spec
    for bad, what in [(1, "between 2 and 8"), (9, "between 2 and 8"), (True, "integer")]:
        with pytest.raises(ConfigError, match=what):
            QuantSpec(bad, 10)
    with pytest.raises(ConfigError, match="does not match"):
        spec_of_record({**spec.to_dict(), "columns": ["max"]})
    with pytest.raises(ConfigError, match="non-finite"):
        quantize_rows(np.array([[0.0, np.inf]]), QuantSpec(3, 2))
    constant = quantize_rows(np.zeros((2, 5), np.float32), QuantSpec(3, 5))
    assert np.array_equal(dequantize(constant, QuantSpec(3, 5)), np.zeros((2, 5), np.float32))


@pytest.mark.parametrize("dtype", ["float16", "float32"])
@pytest.mark.parametrize("method", ["raw", "sort", "swap"])
def test_quantizing_on_the_device_equals_the_store_path(dtype: str, method: str) -> None:
    """`train --quantize` quantizes in torch (on the batch's device): the same values as
    `copy --quantize` (numpy), bit for bit, also for rows of half-way values and ties."""
    from sortkd_cache.data._quant import quantize_tensor

    rng = np.random.default_rng(3)
    z = rng.normal(0, 4, (300, 17))
    z[:50] = np.round(z[:50] * 2) / 2  # many values on a level or half-way between two
    z[50:60] = 1.5  # constant rows: step 0
    z = z.astype(dtype)
    y = rng.integers(0, 17, 300)
    for bits in (2, 3, 7):
        spec = QuantSpec(bits, 17, dtype)
        rows = quantize_rows(z, spec)
        if method != "raw":
            rows = apply_quant(method, rows, y, spec)[0]
        got = quantize_tensor(spec, torch.from_numpy(z).float(), torch.from_numpy(y), method)
        assert np.array_equal(got.numpy(), dequantize(rows, spec)), bits
