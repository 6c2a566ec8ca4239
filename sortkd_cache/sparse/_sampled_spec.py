"""The sampled kind's parameters (:class:`SampledSpec`) and the checks of its options.

A sampled row keeps ``head`` (H, default 0) classes exactly, the teacher's top H by rank with
their logits, and ``draws`` (S) draws with replacement from the rest: the teacher's proposal
distribution ``softmax(z / T0)`` renormalised over the classes outside the head (with H = 0:
over all C, the plain sampled kind of Random-Sampling KD). See :mod:`._sampled` for the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sortkd_cache.errors import ConfigError
from sortkd_cache.sparse._spec import (
    DEFAULT_LSKD_TEMPERATURES,
    DEFAULT_TEMPERATURES,
    _check_temps,
    id_dtype,
    spec_from_record,
)

__all__ = [
    "COUNT_DTYPE",
    "DEFAULT_PROPOSAL",
    "FIDELITY_SUMS",
    "SampledSpec",
    "check_draws",
    "check_head",
    "check_proposal",
]

COUNT_DTYPE = np.dtype(np.uint8)
#: what a sampled kind's fidelity array sums per (block, view)
FIDELITY_SUMS = ("kl", "grad_dot", "dense_sq", "sampled_sq", "rows")
#: the proposal temperature when none is given (the paper losses' T)
DEFAULT_PROPOSAL = 4.0


def check_draws(draws: object, num_classes: int | None = None) -> int:
    """``--sample S`` as an int in [1, 255] (the count dtype's range); ConfigError naming it."""
    if isinstance(draws, bool) or not isinstance(draws, int | np.integer):
        raise ConfigError(f"--sample must be an integer, got {draws!r}")
    if draws < 1:
        raise ConfigError(f"--sample {draws} must be >= 1")
    top = int(np.iinfo(COUNT_DTYPE).max)
    if draws > top:
        raise ConfigError(
            f"--sample {draws} is too large for the count dtype {COUNT_DTYPE} (at most {top})"
        )
    return int(draws)


def check_head(head: object, num_classes: int | None = None) -> int:
    """``--sample-head H`` as an int >= 0 and below C (when known); ConfigError naming it."""
    if isinstance(head, bool) or not isinstance(head, int | np.integer):
        raise ConfigError(f"--sample-head must be an integer, got {head!r}")
    if head < 0:
        raise ConfigError(f"--sample-head {head} must be >= 0")
    if num_classes is not None and head >= num_classes:
        raise ConfigError(
            f"--sample-head {head} must be below the number of classes ({num_classes}); "
            "a dense store keeps every class"
        )
    return int(head)


def check_proposal(temperature: object) -> float:
    """The proposal temperature as a finite float > 0; ConfigError naming it otherwise."""
    try:
        t = float(temperature)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"--proposal-temperature must be a number, got {temperature!r}") from None
    if not np.isfinite(t) or t <= 0:
        raise ConfigError(f"--proposal-temperature {temperature!r} must be finite and > 0")
    return t


@dataclass(frozen=True)
class SampledSpec:
    """Parameters of a sampled kind: S, C, the logits dtype, T0, the recorded temperatures,
    the sampling seed and H, the head kept exactly (0: none)."""

    draws: int
    num_classes: int
    dtype: str = "float16"
    proposal: float = DEFAULT_PROPOSAL
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES
    lskd_temperatures: tuple[float, ...] = DEFAULT_LSKD_TEMPERATURES
    seed: int = 0
    head: int = 0

    def __post_init__(self) -> None:
        check_draws(self.draws)
        check_head(self.head, self.num_classes)
        if self.dtype not in ("float16", "float32", "float64"):
            raise ConfigError(f"sampled logits dtype {self.dtype!r} is not a float dtype")
        t0 = check_proposal(self.proposal)
        temps = _check_temps("temperatures", (t0, *(t for t in self.temperatures if t != t0)))
        object.__setattr__(self, "proposal", t0)
        object.__setattr__(self, "temperatures", temps)
        lskd = _check_temps("lskd_temperatures", self.lskd_temperatures)
        object.__setattr__(self, "lskd_temperatures", lskd)
        if self.head and self.head + self.draws >= self.num_classes:
            raise ConfigError(
                f"--sample-head {self.head} with --sample {self.draws} names every one of the "
                f"{self.num_classes} classes (H + S >= C): store dense logits"
            )

    @property
    def slots(self) -> int:
        """W, the draw slots (``counts`` and ``up`` per row): min(S, C - H)."""
        return min(self.draws, self.num_classes - self.head)

    @property
    def width(self) -> int:
        """H + W, the classes a row names (``ids`` and ``values`` per row)."""
        return self.head + self.slots

    @property
    def id_dtype(self) -> np.dtype[Any]:
        return id_dtype(self.num_classes)

    def columns(self) -> tuple[str, ...]:
        """Names of the ``stats`` columns, in order."""
        lse = tuple(f"lse@{t:g}" for t in self.temperatures)
        lse_std = tuple(f"lse_std@{t:g}" for t in self.lskd_temperatures)
        return ("label", "mean", "std", "max", *lse, *lse_std)

    def column(self, name: str) -> int:
        return self.columns().index(name)

    @property
    def num_stats(self) -> int:
        return len(self.columns())

    @property
    def bytes_per_row(self) -> int:
        """Bytes per sample-view before compression: H·(id + value) + W·(2·id + count + value)
        + P·value."""
        item, ids = np.dtype(self.dtype).itemsize, self.id_dtype.itemsize
        draws = self.slots * (2 * ids + COUNT_DTYPE.itemsize + item)
        return self.head * (ids + item) + draws + self.num_stats * item

    def describe(self) -> str:
        head = f" --sample-head {self.head}" if self.head else ""
        return f"--sample {self.draws}{head}"

    def array_widths(self) -> dict[str, tuple[int, str]]:
        """Per array of a kind: (width, dtype); the fidelity array's width is its per-chunk
        record (``FIDELITY_SUMS`` of :mod:`._sampled`)."""
        w, width, ids = self.slots, self.width, str(self.id_dtype)
        return {
            "ids": (width, ids),
            "counts": (w, str(COUNT_DTYPE)),
            "values": (width, self.dtype),
            "up": (w, ids),
            "stats": (self.num_stats, self.dtype),
            "fidelity": (len(FIDELITY_SUMS), "float64"),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "layout": "sample",
            "draws": self.draws,
            **({"head": self.head} if self.head else {}),  # H = 0: the record as before
            "num_classes": self.num_classes,
            "dtype": self.dtype,
            "id_dtype": str(self.id_dtype),
            "count_dtype": str(COUNT_DTYPE),
            "proposal_temperature": self.proposal,
            "temperatures": list(self.temperatures),
            "lskd_temperatures": list(self.lskd_temperatures),
            "seed": self.seed,
            "columns": list(self.columns()),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SampledSpec:
        return spec_from_record(
            cls,
            d,
            "sampled",
            lambda: cls(
                draws=d["draws"],
                num_classes=d["num_classes"],
                dtype=d["dtype"],
                proposal=d["proposal_temperature"],
                temperatures=tuple(d["temperatures"]),
                lskd_temperatures=tuple(d["lskd_temperatures"]),
                seed=int(d["seed"]),
                head=d.get("head", 0),
            ),
        )
