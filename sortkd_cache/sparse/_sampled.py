"""The sampled soft-label kind (``sample``): S draws per sample-view from the teacher's softmax.

Random-sampling KD (Anshumann et al., ACL 2025, arXiv 2503.16870): per sample-view, S classes
are drawn with replacement from ``p0 = softmax(z / T0)`` at the proposal temperature T0 (the
store records it; default 4, the paper losses' T), and kept as unique entries with counts. A
loss estimated from the draws is unbiased at T0 and importance-weighted at the other recorded
temperatures (:mod:`sortkd_cache.losses._sampled_rows`; docs/sparse.md has the estimators and
their variance).

Per sample-view a sampled kind keeps W = min(S, C) slots, in rank order (descending value;
equal values: lower class id first), the unused ones last with count 0 and, as id, the
undrawn classes in ascending order (no class twice in a row):

* ``ids``    [W] the drawn classes (uint8, uint16 or int32, as top-K ids);
* ``counts`` [W] how often each was drawn (uint8: S <= 255), summing to S;
* ``values`` [W] their raw logits, in the store's dtype (bit for bit);
* ``up``     [W] for an entry ranked at or above the label, the class ranked directly above it
  (the label for the row's first maximum); the entry's own id elsewhere. A method that
  permutes values (``sort``) moves each draw's value to another class; ``up`` says which, so
  sorting sampled rows equals sampling the sorted dense rows with the same draws
  (:func:`relabel`);
* ``stats``  [P] in the store's dtype: ``label`` (the label's logit), ``mean``, ``std`` (over
  all C, unbiased, as LSKD), ``max``, ``lse@T`` = ``logsumexp((z - max) / T)`` at T0 and each
  recorded temperature, ``lse_std@T`` the same over the standardised row at each LSKD
  temperature (with the stored mean and std).

A draw is a rank of the row's descending values: the uniform ``u`` of draw ``d`` of sample
``i`` in view ``v`` is ``counter_uniform(seed ^ SAMPLE_SALT, i, v, d)`` (the counter generator
of the augmentation replay), and the rank is where ``u`` falls in the cumulative proposal
probabilities in rank order. So a store is the same bit for bit whatever the workers, ranks
or chunking, and the same draws taken from the sorted row land on the sorted row's classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sortkd_cache.augment import counter_uniform
from sortkd_cache.errors import ConfigError
from sortkd_cache.sorting import get_method, rank_order
from sortkd_cache.sparse._compress import STANDARDIZE_EPS
from sortkd_cache.sparse._spec import (
    DEFAULT_LSKD_TEMPERATURES,
    DEFAULT_TEMPERATURES,
    _check_temps,
    id_dtype,
)

__all__ = [
    "COUNT_DTYPE",
    "DEFAULT_PROPOSAL",
    "FIDELITY_SUMS",
    "SAMPLE_SALT",
    "SampledRows",
    "SampledSpec",
    "check_draws",
    "check_proposal",
    "fidelity_sums",
    "relabel",
    "sample_rows",
    "sampled_problems",
]

COUNT_DTYPE = np.dtype(np.uint8)
#: the proposal temperature when none is given (the paper losses' T)
DEFAULT_PROPOSAL = 4.0
#: keeps the sampling stream apart from the augmentation draws of the same (seed, i, v)
SAMPLE_SALT = 0x53414D504C45
_BLOCK = 1 << 22  # compare entries per block when locating draws (bounded memory)


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
    """Parameters of a sampled kind: S, C, the logits dtype, T0, the recorded temperatures and
    the sampling seed."""

    draws: int
    num_classes: int
    dtype: str = "float16"
    proposal: float = DEFAULT_PROPOSAL
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES
    lskd_temperatures: tuple[float, ...] = DEFAULT_LSKD_TEMPERATURES
    seed: int = 0

    def __post_init__(self) -> None:
        check_draws(self.draws)
        if self.dtype not in ("float16", "float32", "float64"):
            raise ConfigError(f"sampled logits dtype {self.dtype!r} is not a float dtype")
        t0 = check_proposal(self.proposal)
        temps = _check_temps("temperatures", (t0, *(t for t in self.temperatures if t != t0)))
        object.__setattr__(self, "proposal", t0)
        object.__setattr__(self, "temperatures", temps)
        lskd = _check_temps("lskd_temperatures", self.lskd_temperatures)
        object.__setattr__(self, "lskd_temperatures", lskd)

    @property
    def slots(self) -> int:
        return min(self.draws, self.num_classes)

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
        """Bytes per sample-view before compression."""
        item, ids = np.dtype(self.dtype).itemsize, self.id_dtype.itemsize
        return self.slots * (2 * ids + COUNT_DTYPE.itemsize + item) + self.num_stats * item

    def to_dict(self) -> dict[str, Any]:
        return {
            "layout": "sample",
            "draws": self.draws,
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
        try:
            spec = cls(
                draws=d["draws"],
                num_classes=d["num_classes"],
                dtype=d["dtype"],
                proposal=d["proposal_temperature"],
                temperatures=tuple(d["temperatures"]),
                lskd_temperatures=tuple(d["lskd_temperatures"]),
                seed=int(d["seed"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"malformed sampled record {d!r} ({exc})") from None
        if d != spec.to_dict():
            raise ConfigError(f"sampled record {d!r} does not match its own parameters")
        return spec


@dataclass(frozen=True)
class SampledRows:
    """Sampled rows (numpy): ``ids``, ``counts``, ``values``, ``up`` [..., W] and ``stats``
    [..., P]."""

    ids: np.ndarray
    counts: np.ndarray
    values: np.ndarray
    up: np.ndarray
    stats: np.ndarray

    def __getitem__(self, selection: int | slice | np.ndarray) -> SampledRows:
        return SampledRows(
            self.ids[selection],
            self.counts[selection],
            self.values[selection],
            self.up[selection],
            self.stats[selection],
        )

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.ids, self.counts, self.values, self.up, self.stats


def _ranks(cdf: NDArray[np.float64], u: NDArray[np.float64]) -> NDArray[np.int64]:
    """Per row, where each uniform falls in the row's cumulative probabilities ``cdf`` [N, C]."""
    n, c = cdf.shape
    out = np.empty(u.shape, dtype=np.int64)
    step = max(1, _BLOCK // max(1, u.shape[1] * c))
    for a in range(0, n, step):
        hit = cdf[a : a + step, None, :] <= u[a : a + step, :, None]
        out[a : a + step] = hit.sum(axis=2)
    clipped: NDArray[np.int64] = np.minimum(out, c - 1)
    return clipped


def _round(x: NDArray[np.float64], dtype: np.dtype[Any]) -> NDArray[Any]:
    info = np.finfo(dtype)
    return np.clip(x, float(info.min), float(info.max)).astype(dtype)


def _lse(scaled: NDArray[np.float64]) -> NDArray[np.float64]:
    """Row logsumexp of values <= 0 whose maximum is 0."""
    out: NDArray[np.float64] = np.log(np.exp(scaled).sum(axis=1))
    return out


def _stats(spec: SampledSpec, z: NDArray[Any], y: NDArray[np.int64]) -> NDArray[Any]:
    n, dt = z.shape[0], np.dtype(spec.dtype)
    zf = z.astype(np.float64)
    mx = zf.max(axis=1)
    mean = _round(zf.mean(axis=1), dt).astype(np.float64)
    std = _round(zf.std(axis=1, ddof=1), dt).astype(np.float64)
    cols = [zf[np.arange(n), y], mean, std, mx]
    cols += [_lse((zf - mx[:, None]) / t) for t in spec.temperatures]
    zhat = (zf - mean[:, None]) / (std + STANDARDIZE_EPS)[:, None]
    hmax = zhat.max(axis=1, keepdims=True)
    cols += [_lse((zhat - hmax) / t) for t in spec.lskd_temperatures]
    stats = _round(np.stack(cols, axis=1), dt)
    stats[:, 0] = z[np.arange(n), y]  # the label's logit and the maximum bit for bit
    stats[:, 3] = z.max(axis=1)
    return stats


def _free_ids(ids: NDArray[np.int64], used: NDArray[np.bool_], num_classes: int) -> Any:
    """Ids for the empty slots: the undrawn classes in ascending order, one per empty slot,
    so that no class appears twice in a row (the ids check every sparse kind shares)."""
    n = ids.shape[0]
    drawn = np.zeros((n, num_classes), dtype=bool)
    drawn[np.nonzero(used)[0], ids[used]] = True
    free = np.argsort(drawn, axis=1, kind="stable")
    slot = np.cumsum(~used, axis=1) - 1
    return np.take_along_axis(free, np.maximum(slot, 0), axis=1)


def sample_rows(
    z: NDArray[Any], y: NDArray[Any], spec: SampledSpec, index: NDArray[Any], view: int
) -> SampledRows:
    """Sampled rows of dense logits ``z`` [N, C] (labels ``y``, sample indices ``index``)."""
    if z.ndim != 2 or z.shape[1] != spec.num_classes:
        raise ConfigError(f"expected logits [N, {spec.num_classes}], got {list(z.shape)}")
    if str(z.dtype) != spec.dtype:
        raise ConfigError(f"logits dtype {z.dtype} differs from the sampled kind's {spec.dtype}")
    n, c = z.shape
    yy = np.asarray(y, dtype=np.int64)
    order = rank_order(z, np.broadcast_to(np.arange(c), (n, c)))  # classes by rank
    desc = np.take_along_axis(z, order, axis=1).astype(np.float64)
    p = np.exp((desc - desc[:, :1]) / spec.proposal)
    cdf = np.cumsum(p, axis=1)
    cdf /= cdf[:, -1:]
    draws = np.arange(spec.draws, dtype=np.int64)[None, :]
    u = counter_uniform(spec.seed ^ SAMPLE_SALT, np.asarray(index)[:, None], view, draws)
    ranks = np.sort(_ranks(cdf, u.reshape(n, spec.draws)), axis=1)
    start = np.ones_like(ranks, dtype=bool)
    start[:, 1:] = ranks[:, 1:] != ranks[:, :-1]
    slot = np.cumsum(start, axis=1) - 1
    w = spec.slots
    counts = np.zeros((n, w), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(n), spec.draws), slot.ravel()), 1)
    rank = np.zeros((n, w), dtype=np.int64)
    rows_at, cols_at = np.nonzero(start)
    rank[rows_at, slot[rows_at, cols_at]] = ranks[rows_at, cols_at]
    used = counts > 0
    drawn = np.take_along_axis(order, rank, axis=1)
    ids = np.where(used, drawn, _free_ids(drawn, used, c))
    label_rank = (order == yy[:, None]).argmax(axis=1)
    above = np.take_along_axis(order, np.maximum(rank - 1, 0), axis=1)
    up = np.where(rank == 0, yy[:, None], above)
    up = np.where(used & (rank <= label_rank[:, None]), up, ids)
    values = np.where(used, np.take_along_axis(z, ids, axis=1), np.zeros((), z.dtype))
    idt = spec.id_dtype
    return SampledRows(
        ids.astype(idt),
        counts.astype(COUNT_DTYPE),
        values.astype(z.dtype),
        up.astype(idt),
        _stats(spec, z, yy),
    )


def relabel(method: str, rows: SampledRows, y: NDArray[Any], spec: SampledSpec) -> SampledRows:
    """``method`` on sampled rows: each draw keeps its value and moves to the class holding
    its rank after the method (the method's relabel form; a method without one is refused)."""
    yy = np.asarray(y, dtype=np.int64)
    ids = get_method(method).on_draws(rows.ids.astype(np.int64), rows.up.astype(np.int64), yy)
    used = rows.counts > 0
    ids = np.where(used, ids, _free_ids(ids, used, spec.num_classes)).astype(rows.ids.dtype)
    stats = rows.stats.copy()
    stats[:, spec.column("label")] = stats[:, spec.column("max")]  # the label takes the max
    return SampledRows(ids, rows.counts.copy(), rows.values.copy(), ids.copy(), stats)


#: what the fidelity array sums per (block, view)
FIDELITY_SUMS = ("kl", "grad_dot", "dense_sq", "sampled_sq", "rows")


def fidelity_sums(spec: SampledSpec, z: NDArray[Any], rows: SampledRows) -> NDArray[np.float64]:
    """One chunk's sums [5]: KL(sampled || dense) at T0 (the draws' empirical distribution
    against ``softmax(z / T0)``), and for KD at T0 with a uniform held student, the dot
    product and squared norms of the dense gradient ``q - p`` and the sampled one
    ``q - counts / S`` (the gradient angle over the rows is ``acos(dot / sqrt(dd * ss))``)."""
    n, c = z.shape
    zf = z.astype(np.float64)
    logp = zf / spec.proposal
    logp -= logp.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    emp = np.zeros((n, c))
    at = (np.repeat(np.arange(n), rows.ids.shape[1]), rows.ids.astype(np.int64).ravel())
    np.add.at(emp, at, rows.counts.astype(np.float64).ravel())
    emp /= spec.draws
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(emp > 0, emp * (np.log(emp) - logp), 0.0).sum()
    q = 1.0 / c
    g_dense, g_sampled = q - np.exp(logp), q - emp
    return np.asarray(
        [
            kl,
            float((g_dense * g_sampled).sum()),
            float((g_dense**2).sum()),
            float((g_sampled**2).sum()),
            float(n),
        ]
    )


def _first(bad: NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))[0])


def _slot_checks(spec: SampledSpec, rows: SampledRows) -> list[tuple[NDArray[np.bool_], str]]:
    """(rows-first mask, what is wrong) for each check of the slots."""
    ids, up = rows.ids.astype(np.int64), rows.up.astype(np.int64)
    counts = rows.counts.astype(np.int64)
    used, c = counts > 0, spec.num_classes
    masked = np.sort(np.where(used, ids, -1 - np.arange(ids.shape[1])[None, :]), axis=1)
    return [
        (((ids < 0) | (ids >= c)) & used, f"class id outside [0, {c})"),
        (((up < 0) | (up >= c)) & used, f"up id outside [0, {c})"),
        ((counts.sum(axis=1) != spec.draws)[:, None], f"counts that do not sum to S={spec.draws}"),
        (~used[:, :-1] & used[:, 1:], "an empty slot before a used one"),
        (masked[:, 1:] == masked[:, :-1], "a class drawn in two slots"),
        (~np.isfinite(rows.values.astype(np.float64)) & used, "a non-finite logit"),
        (~np.isfinite(rows.stats.astype(np.float64)), "a non-finite statistic"),
    ]


def sampled_problems(spec: SampledSpec, rows: SampledRows, y: NDArray[Any]) -> list[str]:
    """What is wrong with sampled rows [N, W] (empty when sound): ids and ``up`` in range,
    counts summing to S, used slots first, no class twice, finite values and stats, the
    label's logit equal to its drawn value where the label was drawn."""
    out = [f"row {_first(bad)}: {what}" for bad, what in _slot_checks(spec, rows) if bad.any()]
    n = rows.ids.shape[0]
    hit = (rows.ids.astype(np.int64) == np.asarray(y, dtype=np.int64)[:, None]) & (rows.counts > 0)
    label = np.ascontiguousarray(rows.stats[:, spec.column("label")])
    at = np.ascontiguousarray(rows.values[np.arange(n), hit.argmax(axis=1)])
    differ = at.view(np.uint8).reshape(n, -1) != label.view(np.uint8).reshape(n, -1)
    wrong = hit.any(axis=1) & differ.any(axis=1)
    if wrong.any():
        out.append(f"row {_first(wrong)}: the label's logit differs from its drawn value")
    return out
