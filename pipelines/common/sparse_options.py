"""The options of a sparse store that ``dump`` and ``copy`` both take (``--topk-temperatures``,
``--sample`` with ``--proposal-temperature`` and ``--sample-head``), checked alike; torch-free
(the configurations import it)."""

from __future__ import annotations

from typing import Protocol

from sortkd_cache.errors import ConfigError
from sortkd_cache.options import Spell
from sortkd_cache.sparse import DEFAULT_TEMPERATURES, check_draws, check_head, check_proposal

__all__ = ["TEMPERATURE_RANGE", "check_sample_options", "parse_temperatures"]

#: The recorded tail temperatures of a sparse kind lie here: outside it the tail's mass
#: underflows or every row's tail is the whole row, and the kind cannot be trained from.
TEMPERATURE_RANGE = (0.05, 100.0)


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
