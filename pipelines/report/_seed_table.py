"""A seed-aware results table from plain ``(variant, seed, top1)`` records (pure, no I/O).

Per variant: the test top-1 of each seed, their mean and sample standard deviation (ddof=1;
0 with one seed), min and max. Per requested pair ``(variant, baseline)``: the paired per-seed
differences ``variant - baseline`` over the seeds both have, their mean, sample standard
deviation, min, max and how many seeds the variant won. Pairing by seed removes what two runs
of one seed share (the student's initialisation and its batch order), so a paired spread is
the honest yardstick of a small difference; the unpaired spreads are shown beside it.

Each paired difference carries a 95% confidence interval of its mean (Student's t over the
seeds' differences: mean ± t(0.975, n-1) · std / sqrt(n); none with one seed) and how many
seeds agree in sign with its mean. ``sortkd-cache report`` (and so ``run`` and ``sweep``, which
end with it) builds its tables with it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sortkd_cache.errors import ConfigError

__all__ = [
    "PairedDifference",
    "SeedTable",
    "VariantSummary",
    "format_seed_table",
    "mean_std",
    "seed_table",
]


#: two-sided 95% critical values of Student's t by degrees of freedom (1..30, then 40, 60,
#: 120 and the normal limit); between tabulated values, linear in 1/df
_T975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
    9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120,
    17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064,
    25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000,
    120: 1.980,
}  # fmt: skip


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (df >= 1)."""
    if df in _T975:
        return _T975[df]
    if df > 120:
        lo, hi, t_lo, t_hi = 120.0, math.inf, _T975[120], 1.960
    else:
        lo = float(max(k for k in _T975 if k < df))
        hi = float(min(k for k in _T975 if k > df))
        t_lo, t_hi = _T975[int(lo)], _T975[int(hi)]
    w = (1 / lo - 1 / df) / (1 / lo - (0.0 if math.isinf(hi) else 1 / hi))
    return t_lo + w * (t_hi - t_lo)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for one value; NaN for none)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = math.fsum(values) / n
    if n == 1:
        return mean, 0.0
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


@dataclass(frozen=True)
class VariantSummary:
    """One variant's test top-1 over its seeds."""

    variant: str
    seeds: tuple[int, ...]
    top1: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.top1)

    @property
    def mean(self) -> float:
        return mean_std(self.top1)[0]

    @property
    def std(self) -> float:
        return mean_std(self.top1)[1]


@dataclass(frozen=True)
class PairedDifference:
    """``variant - baseline`` seed by seed, over the seeds both have."""

    variant: str
    baseline: str
    seeds: tuple[int, ...]
    diffs: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.diffs)

    @property
    def mean(self) -> float:
        return mean_std(self.diffs)[0]

    @property
    def std(self) -> float:
        return mean_std(self.diffs)[1]

    @property
    def wins(self) -> int:
        """Seeds on which the variant scored higher than the baseline."""
        return sum(d > 0 for d in self.diffs)

    @property
    def agree(self) -> int:
        """Seeds whose difference has the sign of the mean difference (a zero agrees with
        nothing; with a zero mean, none agrees)."""
        m = self.mean
        return sum((d > 0 and m > 0) or (d < 0 and m < 0) for d in self.diffs)

    @property
    def interval(self) -> tuple[float, float]:
        """The 95% confidence interval of the mean difference (NaN, NaN with one seed)."""
        if self.n < 2:
            return math.nan, math.nan
        half = t975(self.n - 1) * self.std / math.sqrt(self.n)
        return self.mean - half, self.mean + half

    @property
    def within_noise(self) -> bool:
        """The interval holds zero (or there is no interval: one seed)."""
        low, high = self.interval
        return math.isnan(low) or low <= 0.0 <= high


@dataclass(frozen=True)
class SeedTable:
    variants: tuple[VariantSummary, ...]
    pairs: tuple[PairedDifference, ...]

    def variant(self, name: str) -> VariantSummary:
        for v in self.variants:
            if v.variant == name:
                return v
        raise ConfigError(f"no results for variant {name!r}")


def seed_table(
    records: Iterable[tuple[str, int, float]], pairs: Iterable[tuple[str, str]] = ()
) -> SeedTable:
    """The table of ``records`` (``(variant, seed, top1)``, variants in first-seen order,
    seeds sorted) with the paired differences of ``pairs`` (``(variant, baseline)``).

    A repeated ``(variant, seed)``, a pair naming an unknown variant, or a pair without a
    common seed is a :class:`ConfigError` naming it.
    """
    runs: dict[str, dict[int, float]] = {}
    for variant, seed, top1 in records:
        seeds = runs.setdefault(variant, {})
        if seed in seeds:
            raise ConfigError(f"two results for variant {variant!r} seed {seed}")
        seeds[int(seed)] = float(top1)
    summaries = tuple(
        VariantSummary(name, tuple(sorted(s)), tuple(s[k] for k in sorted(s)))
        for name, s in runs.items()
    )
    diffs: list[PairedDifference] = []
    for variant, baseline in pairs:
        for name in (variant, baseline):
            if name not in runs:
                raise ConfigError(f"paired difference {variant!r} - {baseline!r}: no {name!r}")
        common = sorted(set(runs[variant]) & set(runs[baseline]))
        if not common:
            raise ConfigError(f"{variant!r} and {baseline!r} share no seed to pair")
        values = tuple(runs[variant][s] - runs[baseline][s] for s in common)
        diffs.append(PairedDifference(variant, baseline, tuple(common), values))
    return SeedTable(summaries, tuple(diffs))


def _f(x: float, spec: str = ".2f") -> str:
    return "n/a" if math.isnan(x) else format(x, spec)


def format_seed_table(
    table: SeedTable, extra: Mapping[str, Mapping[str, str]] | None = None
) -> str:
    """Markdown: the per-variant table, then the paired differences (when any).

    ``extra`` adds columns after the variant's name: ``{variant: {column: text}}``, the
    columns in first-seen order (a variant without one shows ``-``).
    """
    extra = extra or {}
    columns = list(dict.fromkeys(c for cols in extra.values() for c in cols))
    head = "".join(f" {c} |" for c in columns)
    lines = [
        f"| variant |{head} test top-1 % (mean ± std) | min | max | seeds |",
        "|---|" + "---|" * len(columns) + "---:|---:|---:|---:|",
    ]
    for v in table.variants:
        cells = "".join(f" {extra.get(v.variant, {}).get(c, '-')} |" for c in columns)
        lines.append(
            f"| {v.variant} |{cells} {_f(v.mean)} ± {_f(v.std)} | {_f(min(v.top1))} "
            f"| {_f(max(v.top1))} | {v.n} |"
        )
    if table.pairs:
        lines += [
            "",
            "| paired by seed | Δ top-1 (mean ± std) | min | max | variant better |",
            "|---|---:|---:|---:|---:|",
        ]
        for p in table.pairs:
            lines.append(
                f"| {p.variant} - {p.baseline} | {_f(p.mean, '+.2f')} ± {_f(p.std)} "
                f"| {_f(min(p.diffs), '+.2f')} | {_f(max(p.diffs), '+.2f')} "
                f"| {p.wins} of {p.n} |"
            )
    return "\n".join(lines) + "\n"
