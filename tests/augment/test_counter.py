from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sortkd_cache.augment import counter_bits, counter_uniform, splitmix64
from sortkd_cache.errors import AugmentError

MASK = (1 << 64) - 1
G = 0x9E3779B97F4A7C15


def _mix_py(z: int) -> int:
    z &= MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def _bits_py(seed: int, index: int, view: int, draw: int) -> int:
    """The construction documented in sortkd_cache.augment._counter, in Python ints."""
    h = _mix_py(seed + G)
    for word in (index, view, draw):
        h = _mix_py(((h ^ (word & MASK)) + G) & MASK)
    return h


def test_splitmix64_known_values() -> None:
    # SplitMix64 with state 0: the first output is mix(0 + G) = 0xE220A8397B1DCDAF.
    out = splitmix64(np.array([G], dtype=np.uint64))
    assert int(out[0]) == 0xE220A8397B1DCDAF
    assert int(out[0]) == _mix_py(G)


u64 = st.integers(min_value=-(1 << 63), max_value=MASK)


@settings(max_examples=200, deadline=None)
@given(seed=u64, index=u64, view=u64, draw=u64)
def test_bits_match_documented_construction(seed: int, index: int, view: int, draw: int) -> None:
    got = counter_bits(seed, index, view, draw)
    assert got.shape == ()
    assert int(got) == _bits_py(seed, index, view, draw)
    u = counter_uniform(seed, index, view, draw)
    assert float(u) == (_bits_py(seed, index, view, draw) >> 11) * 2.0**-53


def test_vectorised_equals_scalar_and_broadcasts() -> None:
    idx = np.arange(20, dtype=np.int64)
    draws = np.arange(3)
    grid = counter_uniform(7, idx[:, None], 2, draws[None, :])
    assert grid.shape == (20, 3)
    assert grid.dtype == np.float64
    for i in (0, 5, 19):
        for d in range(3):
            assert grid[i, d] == counter_uniform(7, int(i), 2, d)


def test_negative_inputs_wrap_modulo_2_64() -> None:
    assert int(counter_bits(-1, 3, 0, 0)) == int(counter_bits(MASK, 3, 0, 0))
    a = counter_bits(1, np.array([-2, 5], dtype=np.int64), 0, 0)
    b = counter_bits(1, np.array([MASK - 1, 5], dtype=np.uint64), 0, 0)
    np.testing.assert_array_equal(a, b)


def test_each_key_word_matters() -> None:
    base = float(counter_uniform(1, 2, 3, 4))
    for args in ((2, 2, 3, 4), (1, 3, 3, 4), (1, 2, 4, 4), (1, 2, 3, 5)):
        assert float(counter_uniform(*args)) != base
    # Swapping words gives a different key too.
    assert float(counter_uniform(1, 3, 2, 4)) != base


def test_uniformity_and_no_repeats() -> None:
    idx = np.arange(2000, dtype=np.int64)[:, None]
    views = np.arange(50, dtype=np.int64)[None, :]
    u = counter_uniform(12345, idx, views, 0)
    assert u.shape == (2000, 50)
    assert u.min() >= 0.0
    assert u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.005
    assert abs(u.var() - 1.0 / 12.0) < 0.002
    # No repeats across (index, view).
    assert len(np.unique(u)) == u.size
    # Every decile gets about a tenth (chi-square, 9 dof: 99.9% quantile is 27.9).
    counts = np.bincount((u * 10).astype(np.int64).ravel(), minlength=10)
    expected = u.size / 10
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 27.9
    # Neighbouring indices are not correlated.
    corr = np.corrcoef(u[:-1, 0], u[1:, 0])[0, 1]
    assert abs(corr) < 0.1


def test_non_integer_inputs_raise() -> None:
    with pytest.raises(AugmentError, match="float64"):
        counter_uniform(0, np.array([0.5]), 0, 0)
    with pytest.raises(AugmentError, match="True"):
        counter_uniform(True, 0, 0, 0)
    with pytest.raises(AugmentError, match="broadcast"):
        counter_uniform(0, np.arange(3), np.arange(4), 0)
