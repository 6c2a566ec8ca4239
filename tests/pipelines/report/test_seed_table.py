"""The seed-aware results table: per-variant mean ± std and paired per-seed differences."""

from __future__ import annotations

import math

import pytest

from sortkd_cache.errors import ConfigError
from sortkd_cache.pipelines.report._seed_table import mean_std, seed_table, t975

RECORDS = [
    ("CE", 0, 70.0),
    ("CE", 1, 72.0),
    ("CE", 2, 74.0),
    ("KD raw", 2, 80.0),
    ("KD raw", 0, 78.0),
    ("KD raw", 1, 79.0),
    ("KD sort", 0, 78.5),
    ("KD sort", 1, 78.5),
    ("KD sort", 2, 80.5),
]


def test_mean_and_sample_std() -> None:
    assert mean_std([70.0, 72.0, 74.0]) == (72.0, 2.0)
    assert mean_std([5.0]) == (5.0, 0.0)
    assert all(math.isnan(x) for x in mean_std([]))


def test_variants_in_first_seen_order_seeds_sorted() -> None:
    table = seed_table(RECORDS)
    assert [v.variant for v in table.variants] == ["CE", "KD raw", "KD sort"]
    kd = table.variant("KD raw")
    assert kd.seeds == (0, 1, 2) and kd.top1 == (78.0, 79.0, 80.0)
    assert (kd.mean, kd.std, kd.n) == (79.0, 1.0, 3)
    assert table.pairs == ()


def test_paired_differences_seed_by_seed() -> None:
    table = seed_table(RECORDS, [("KD sort", "KD raw"), ("KD raw", "CE")])
    sort, kd = table.pairs
    assert sort.diffs == (0.5, -0.5, 0.5) and sort.wins == 2 and sort.n == 3
    assert sort.mean == pytest.approx(1 / 6) and sort.std == pytest.approx(math.sqrt(1 / 3))
    # paired: KD - CE is 8, 7, 6 although both spreads are larger than the pairs' spread
    assert kd.diffs == (8.0, 7.0, 6.0) and (kd.mean, kd.std) == (7.0, 1.0)


def test_pairs_use_the_common_seeds_only() -> None:
    table = seed_table([*RECORDS, ("DKD", 1, 90.0), ("DKD", 7, 91.0)], [("DKD", "CE")])
    assert table.pairs[0].seeds == (1,) and table.pairs[0].diffs == (18.0,)


@pytest.mark.parametrize(
    ("records", "pairs", "message"),
    [
        ([*RECORDS, ("CE", 1, 71.0)], [], "two results for variant 'CE' seed 1"),
        (RECORDS, [("KD swap", "KD raw")], "no 'KD swap'"),
        ([*RECORDS, ("X", 9, 1.0)], [("X", "CE")], "'X' and 'CE' share no seed"),
    ],
)
def test_bad_input_is_one_clear_error(
    records: list[tuple[str, int, float]], pairs: list[tuple[str, str]], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        seed_table(records, pairs)


def test_interval_and_sign_agreement() -> None:
    """The 95% t-interval of a paired mean (t(0.975, 2) = 4.303) and the seeds that agree
    in sign with it; an interval that holds zero is within noise."""
    table = seed_table(RECORDS, [("KD sort", "KD raw"), ("KD raw", "CE")])
    sort, kd = table.pairs
    half = 4.303 * math.sqrt(1 / 3) / math.sqrt(3)
    assert sort.interval == pytest.approx((1 / 6 - half, 1 / 6 + half))
    assert sort.agree == 2 and sort.within_noise
    assert kd.interval == pytest.approx((7.0 - 4.303 / math.sqrt(3), 7.0 + 4.303 / math.sqrt(3)))
    assert kd.agree == 3 and not kd.within_noise
    one = seed_table([*RECORDS, ("DKD", 1, 90.0)], [("DKD", "CE")]).pairs[0]
    assert all(math.isnan(x) for x in one.interval) and one.within_noise


def test_t_quantiles() -> None:
    assert (t975(1), t975(4), t975(30)) == (12.706, 2.776, 2.042)
    assert 2.021 < t975(35) < 2.042 and 1.96 < t975(1000) < 1.98
