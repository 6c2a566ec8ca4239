"""The sparse (top-K) logits kind: what is recorded per sample-view, and its parameters.

Per sample-view a sparse kind keeps

* ``ids``    [K]  the class ids of the K largest logits, in rank order (descending value in
  IEEE-754 totalOrder, identical values: lower class id first; the sorting mechanism's order),
  as uint8 (C <= 256), uint16 (C <= 65,536) or int32;
* ``values`` [K]  those raw logits, in the store's logits dtype (bit for bit);
* ``stats``  [S]  in the store's logits dtype, the columns named by :meth:`SparseSpec.columns`:

  - ``label``: the label's own logit (also when the label is outside the top K);
  - ``mean``, ``std``: the row's mean and unbiased standard deviation over all C classes (the
    statistics LSKD standardises with);
  - ``tail@T`` for each recorded temperature T: the log of the *tail* mass relative to the row
    maximum, ``logsumexp((z_j - max z) / T)`` over the C - K classes outside the top K (the
    label included when it is one of them);
  - ``tail_std@T`` for each recorded LSKD temperature T: the same over the standardised row
    ``(z - mean) / (std + 1e-7)``.

With float16 logits and C <= 65,536 that is 4K + 2 * S bytes: 4K + 14 with the defaults
(T = 1, 2, 4 and LSKD's T = 2).

The tail is the complement of the top K, so its multiset of values is unchanged by ``sort``
and ``swap`` (see :mod:`._methods`): the tail columns carry over bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from sortkd_cache.errors import ConfigError

__all__ = [
    "DEFAULT_LSKD_TEMPERATURES",
    "DEFAULT_TAIL",
    "DEFAULT_TEMPERATURES",
    "TAILS",
    "SAMPLED_TAILS",
    "DEFAULT_SAMPLED_TAIL",
    "SparseRows",
    "SparseSpec",
    "check_topk",
    "id_dtype",
]

DEFAULT_TEMPERATURES = (1.0, 2.0, 4.0)
DEFAULT_LSKD_TEMPERATURES = (2.0,)
#: How a sparse loss treats the dropped tail (see :mod:`._loss`): "uniform" spreads its mass
#: evenly over the dropped classes (TinyViT's choice), "bucket" matches its total mass only (the
#: rebuilt tail takes the student's own spread). Uniform is the default: students from top-10
#: stores of C=100 scored 1.7-1.8 points above bucket (BENCHMARKS.md, bench_sparse_students.py).
TAILS = ("uniform", "bucket")
#: The tail handling a loss uses when none is chosen (``train --sparse-tail``): the first.
DEFAULT_TAIL = TAILS[0]
#: How a loss treats the classes a sampled row does not name (``losses/_sampled_rows.py``):
#: "student" gives them the student's own (detached) probabilities and corrects that guess at
#: the drawn classes (a control variate: unbiased, with less variance the closer the student
#: is to the teacher); "counts" makes the draws' counts the target (Random-Sampling KD's
#: estimator). Both unbiased; student is the default (BENCHMARKS.md, bench_sparse_students.py).
SAMPLED_TAILS = ("student", "counts")
DEFAULT_SAMPLED_TAIL = SAMPLED_TAILS[0]


def id_dtype(num_classes: int) -> np.dtype[Any]:
    """The smallest integer dtype that holds class ids below ``num_classes``."""
    if num_classes <= 1 << 8:
        return np.dtype(np.uint8)
    if num_classes <= 1 << 16:
        return np.dtype(np.uint16)
    return np.dtype(np.int32)


def check_topk(k: object, num_classes: int) -> int:
    """``k`` as an int in ``[1, num_classes)``; ConfigError naming the bad value otherwise."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ConfigError(f"--topk must be an integer, got {k!r}")
    if k < 1:
        raise ConfigError(f"--topk {k} must be >= 1")
    if k >= num_classes:
        raise ConfigError(
            f"--topk {k} must be below the number of classes ({num_classes}); "
            "a dense store keeps every class"
        )
    return int(k)


def _check_temps(name: str, temps: tuple[float, ...]) -> tuple[float, ...]:
    out = tuple(float(t) for t in temps)
    if not out and name == "temperatures":
        raise ConfigError("at least one recorded temperature is needed")
    for t in out:
        if not np.isfinite(t) or t <= 0:
            raise ConfigError(f"recorded {name} must be finite and > 0, got {t!r}")
    if len(set(out)) != len(out):
        raise ConfigError(f"recorded {name} repeat a value: {list(out)}")
    return out


_Spec = TypeVar("_Spec", bound="_Recorded")


class _Recorded(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def spec_from_record(
    cls: type[_Spec], d: dict[str, Any], what: str, build: Callable[[], _Spec]
) -> _Spec:
    """A spec (top-K or sampled) from its store record: ``build()`` reads the fields, and the
    record must be exactly the spec's own ``to_dict()`` (ConfigError naming it otherwise)."""
    try:
        spec = build()
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"malformed {what} record {d!r} ({exc})") from None
    if d != spec.to_dict():
        raise ConfigError(f"{what} record {d!r} does not match its own parameters")
    return spec


@dataclass(frozen=True)
class SparseSpec:
    """Parameters of a sparse kind: K, C, the logits dtype and the recorded temperatures."""

    k: int
    num_classes: int
    dtype: str = "float16"
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES
    lskd_temperatures: tuple[float, ...] = DEFAULT_LSKD_TEMPERATURES

    def __post_init__(self) -> None:
        check_topk(self.k, self.num_classes)
        if self.dtype not in ("float16", "float32", "float64"):
            raise ConfigError(f"sparse logits dtype {self.dtype!r} is not a float dtype")
        object.__setattr__(self, "temperatures", _check_temps("temperatures", self.temperatures))
        object.__setattr__(
            self, "lskd_temperatures", _check_temps("lskd_temperatures", self.lskd_temperatures)
        )

    @property
    def id_dtype(self) -> np.dtype[Any]:
        return id_dtype(self.num_classes)

    def columns(self) -> tuple[str, ...]:
        """Names of the ``stats`` columns, in order."""
        tails = tuple(f"tail@{t:g}" for t in self.temperatures)
        std_tails = tuple(f"tail_std@{t:g}" for t in self.lskd_temperatures)
        return ("label", "mean", "std", *tails, *std_tails)

    def column(self, name: str) -> int:
        return self.columns().index(name)

    @property
    def num_stats(self) -> int:
        return len(self.columns())

    @property
    def bytes_per_row(self) -> int:
        """Bytes per sample-view before compression."""
        item = np.dtype(self.dtype).itemsize
        return self.k * (self.id_dtype.itemsize + item) + self.num_stats * item

    def array_widths(self) -> dict[str, tuple[int, str]]:
        """Per array of a kind: (width, dtype); the fidelity array's width is its per-chunk
        record (the KL per recorded T, the rows whose label fell outside, the rows)."""
        return {
            "ids": (self.k, str(self.id_dtype)),
            "values": (self.k, self.dtype),
            "stats": (self.num_stats, self.dtype),
            "fidelity": (len(self.temperatures) + 2, "float64"),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "num_classes": self.num_classes,
            "dtype": self.dtype,
            "id_dtype": str(self.id_dtype),
            "temperatures": list(self.temperatures),
            "lskd_temperatures": list(self.lskd_temperatures),
            "columns": list(self.columns()),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SparseSpec:
        return spec_from_record(
            cls,
            d,
            "sparse",
            lambda: cls(
                k=d["k"],
                num_classes=d["num_classes"],
                dtype=d["dtype"],
                temperatures=tuple(d["temperatures"]),
                lskd_temperatures=tuple(d["lskd_temperatures"]),
            ),
        )

    def nearest(self, temperature: float, *, lskd: bool = False) -> float:
        """The recorded temperature nearest ``temperature`` (in log scale)."""
        temps = self.lskd_temperatures if lskd else self.temperatures
        if not temps:
            raise ConfigError("this sparse kind records no LSKD temperature")
        t = float(temperature)
        return min(temps, key=lambda r: (abs(np.log(r / t)), r))

    def tail_column(self, temperature: float, *, lskd: bool = False) -> tuple[int, float, bool]:
        """(stats column, recorded temperature used, whether it is exact) for ``temperature``."""
        used = self.nearest(temperature, lskd=lskd)
        name = f"tail_std@{used:g}" if lskd else f"tail@{used:g}"
        return self.column(name), used, used == float(temperature)


@dataclass(frozen=True)
class SparseRows:
    """Sparse rows (numpy): ``ids`` [..., K], ``values`` [..., K], ``stats`` [..., S]."""

    ids: np.ndarray
    values: np.ndarray
    stats: np.ndarray

    def __getitem__(self, selection: int | slice | np.ndarray) -> SparseRows:
        return SparseRows(self.ids[selection], self.values[selection], self.stats[selection])
