"""The options of a sparse kind that ``dump``, ``copy`` and ``train`` take
(``--topk-temperatures``, ``--sample`` with ``--proposal-temperature`` and ``--sample-head``),
checked alike, and the spec they make; torch-free (the stage configurations import it).
:meth:`sortkd_cache.store.StoreMeta.with_sparse` records a spec in a store's metadata.
"""

from __future__ import annotations

from typing import Any, Protocol

from sortkd_cache.errors import ConfigError
from sortkd_cache.options import Spell
from sortkd_cache.sparse._quant import QuantSpec, check_bits
from sortkd_cache.sparse._sampled_spec import (
    DEFAULT_PROPOSAL,
    SampledSpec,
    check_draws,
    check_head,
    check_proposal,
)
from sortkd_cache.sparse._spec import DEFAULT_TEMPERATURES, SparseSpec, check_topk

__all__ = [
    "FORMATS",
    "check_quantize_options",
    "quant_spec_for",
    "spec_of_record",
    "TEMPERATURE_RANGE",
    "check_sample_options",
    "parse_temperatures",
    "sampled_spec_for",
    "sparse_spec_for",
]

#: The recorded tail temperatures of a sparse kind lie here: outside it the tail's mass
#: underflows or every row's tail is the whole row, and the kind cannot be trained from.
TEMPERATURE_RANGE = (0.05, 100.0)


#: The format record of each non-dense layout, by the layout name its store record gives (a
#: top-K record predates the key): the one table a new layout's spec joins.
FORMATS: dict[str, type[SparseSpec] | type[SampledSpec] | type[QuantSpec]] = {
    "topk": SparseSpec,
    "sample": SampledSpec,
    "quant": QuantSpec,
}


def spec_of_record(record: dict[str, Any]) -> SparseSpec | SampledSpec | QuantSpec:
    """The spec a store's ``sparse`` record describes (ConfigError: an unknown layout or a
    malformed record)."""
    fmt = FORMATS.get(record.get("layout", "topk"))
    if fmt is None:
        raise ConfigError(f"unknown sparse layout {record.get('layout')!r}")
    return fmt.from_dict(record)


class _SampleOptions(Protocol):
    @property
    def sample(self) -> int | None: ...
    @property
    def topk(self) -> int | None: ...
    @property
    def proposal_temperature(self) -> float | None: ...
    @property
    def sample_head(self) -> int | None: ...


def check_sample_options(cfg: _SampleOptions, spell: Spell) -> None:
    """``--sample S`` in the count dtype's range, a proposal temperature > 0, a head >= 0,
    and not both ``--sample`` and ``--topk``; ConfigError naming the bad value (dump and
    copy share it)."""
    if cfg.sample is None:
        return
    if cfg.topk is not None:
        raise ConfigError(f"{spell('sample')} and {spell('topk')} exclude each other")
    check_draws(cfg.sample)
    if cfg.proposal_temperature is not None:
        check_proposal(cfg.proposal_temperature)
    if cfg.sample_head is not None:
        check_head(cfg.sample_head)


class _QuantizeOptions(Protocol):
    @property
    def quantize(self) -> int | None: ...
    @property
    def topk(self) -> int | None: ...
    @property
    def sample(self) -> int | None: ...


def check_quantize_options(cfg: _QuantizeOptions, spell: Spell) -> None:
    """``--quantize B`` in range and not with ``--topk`` or ``--sample``; ConfigError naming
    the bad value (dump, copy and train share it)."""
    if cfg.quantize is None:
        return
    for other in ("topk", "sample"):
        if getattr(cfg, other) is not None:
            raise ConfigError(f"{spell('quantize')} and {spell(other)} exclude each other")
    check_bits(cfg.quantize)


def parse_temperatures(text: str | None, name: str = "--topk-temperatures") -> tuple[float, ...]:
    """``"1,2,4"`` to (1.0, 2.0, 4.0) (None: the default temperatures); ConfigError naming the
    bad value, also for a temperature outside :data:`TEMPERATURE_RANGE` or one given twice."""
    if text is None or text == "":
        return DEFAULT_TEMPERATURES
    try:
        temps = tuple(float(t) for t in str(text).split(","))
    except ValueError:
        raise ConfigError(f"{name} must be numbers like 1,2,4, got {text!r}") from None
    low, high = TEMPERATURE_RANGE
    for t in temps:
        if not low <= t <= high:  # also refuses nan
            raise ConfigError(f"{name} must be temperatures in [{low:g}, {high:g}], got {t!r}")
    if len(set(temps)) != len(temps):
        raise ConfigError(f"{name} lists a temperature twice: {text!r}")
    return temps


def sparse_spec_for(k: int, num_classes: int, dtype: str, temperatures: str | None) -> SparseSpec:
    return SparseSpec(
        check_topk(k, num_classes), num_classes, dtype, parse_temperatures(temperatures)
    )


def sampled_spec_for(
    draws: int,
    num_classes: int,
    dtype: str,
    proposal: float | None,
    seed: int,
    head: int | None = None,
) -> SampledSpec:
    """``--sample S`` (``--sample-head H``) of a store of ``num_classes`` in ``dtype``; the
    draws are keyed by the store's ``seed``."""
    t0 = DEFAULT_PROPOSAL if proposal is None else proposal
    return SampledSpec(draws, num_classes, dtype, t0, seed=seed, head=head or 0)


def quant_spec_for(bits: int, num_classes: int, dtype: str) -> QuantSpec:
    """``--quantize B`` of a store of ``num_classes`` in ``dtype``."""
    return QuantSpec(check_bits(bits), num_classes, dtype)
