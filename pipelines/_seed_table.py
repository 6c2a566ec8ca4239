"""A seed-aware results table from plain ``(variant, seed, top1)`` records (pure, no I/O).

Per variant: the test top-1 of each seed, their mean and sample standard deviation (ddof=1;
0 with one seed), min and max. Per requested pair ``(variant, baseline)``: the paired per-seed
differences ``variant - baseline`` over the seeds both have, their mean, sample standard
deviation, min, max and how many seeds the variant won. Pairing by seed removes what two runs
of one seed share (the student's initialisation and its batch order), so a paired spread is
the honest yardstick of a small difference; the unpaired spreads are shown beside it.

``sortkd-cache run`` and ``sortkd-cache sweep`` both build their reports with it.
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
