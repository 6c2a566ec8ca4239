"""The sampled soft-label kind (``sample``): S draws per sample-view from the teacher's softmax.

Random-sampling KD (Anshumann et al., ACL 2025, arXiv 2503.16870): per sample-view, S classes
are drawn with replacement from ``p0 = softmax(z / T0)`` at the proposal temperature T0 (the
store records it; default 4, the paper losses' T), and kept as unique entries with counts. A
loss estimated from the draws is unbiased at T0 and importance-weighted at the other recorded
temperatures (:mod:`sortkd_cache.losses._sampled_rows`; docs/sparse.md has the estimators and
their variance).

Per sample-view a sampled kind names H + W classes: the head, the top H ranks kept exactly
(``--sample-head H``, default 0), then W = min(S, C - H) draw slots from the ranks below, in
rank order (descending value; equal values: lower class id first), the unused ones last
with count 0 and, as id, the classes not named in ascending order (no class twice in a row):

* ``ids``    [H + W] the head's classes, then the drawn ones (uint8, uint16 or int32);
* ``counts`` [W] how often each draw slot's class was drawn (uint8: S <= 255), summing to S;
* ``values`` [H + W] their raw logits, in the store's dtype (bit for bit);
* ``up``     [W] for a drawn entry ranked at or above the label, the class ranked directly
  above it (the label for the row's first maximum); the entry's own id elsewhere. A method that
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
probabilities of the ranks below the head, in rank order. The head's ``up`` is not stored:
it follows from the rank order (:func:`relabel`). So a store is the same bit for bit
whatever the workers, ranks or chunking, and the same draws taken from the sorted row land
on the sorted row's classes.
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
from sortkd_cache.sparse._sampled_spec import (
    COUNT_DTYPE,
    DEFAULT_PROPOSAL,
    FIDELITY_SUMS,
    SampledSpec,
    check_draws,
    check_head,
    check_proposal,
)

__all__ = [
    "COUNT_DTYPE",
    "DEFAULT_PROPOSAL",
    "FIDELITY_SUMS",
    "SAMPLE_SALT",
    "SampledRows",
    "SampledSpec",
    "check_draws",
    "check_head",
    "check_proposal",
    "fidelity_sums",
    "relabel",
    "estimate",
    "sample_rows",
    "sampled_problems",
    "used_slots",
]

SAMPLE_SALT = 0x53414D504C45
_BLOCK = 1 << 22  # compare entries per block when locating draws (bounded memory)


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


def _tail_cdf(desc: NDArray[np.float64], spec: SampledSpec) -> NDArray[np.float64]:
    """Cumulative proposal probabilities over the ranks below the head [N, C - H]."""
    p = np.exp((desc[:, spec.head :] - desc[:, :1]) / spec.proposal)
    cdf = np.cumsum(p, axis=1)
    total = cdf[:, -1:]
    out: NDArray[np.float64] = cdf / np.where(total > 0, total, 1.0)
    return out


def _draw_slots(
    ranks: NDArray[np.int64], n: int, spec: SampledSpec
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Sorted draws' ranks [N, S] as (counts, rank) per draw slot [N, W]."""
    start = np.ones_like(ranks, dtype=bool)
    start[:, 1:] = ranks[:, 1:] != ranks[:, :-1]
    slot = np.cumsum(start, axis=1) - 1
    counts = np.zeros((n, spec.slots), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(n), spec.draws), slot.ravel()), 1)
    rank = np.zeros((n, spec.slots), dtype=np.int64)
    rows_at, cols_at = np.nonzero(start)
    rank[rows_at, slot[rows_at, cols_at]] = ranks[rows_at, cols_at]
    return counts, rank


def used_slots(spec: SampledSpec, counts: NDArray[Any]) -> NDArray[np.bool_]:
    """Which of a row's H + W classes it names [N, H + W]: the head always, a draw slot when
    its count is above 0."""
    head = np.ones((*counts.shape[:-1], spec.head), dtype=bool)
    return np.concatenate([head, np.asarray(counts) > 0], axis=-1)


def sample_rows(
    z: NDArray[Any], y: NDArray[Any], spec: SampledSpec, index: NDArray[Any], view: int
) -> SampledRows:
    """Sampled rows of dense logits ``z`` [N, C] (labels ``y``, sample indices ``index``): the
    top H ranks kept, S draws from the proposal over the ranks below them."""
    if z.ndim != 2 or z.shape[1] != spec.num_classes:
        raise ConfigError(f"expected logits [N, {spec.num_classes}], got {list(z.shape)}")
    if str(z.dtype) != spec.dtype:
        raise ConfigError(f"logits dtype {z.dtype} differs from the sampled kind's {spec.dtype}")
    n, c = z.shape
    yy = np.asarray(y, dtype=np.int64)
    order = rank_order(z, np.broadcast_to(np.arange(c), (n, c)))  # classes by rank
    desc = np.take_along_axis(z, order, axis=1).astype(np.float64)
    draws = np.arange(spec.draws, dtype=np.int64)[None, :]
    u = counter_uniform(spec.seed ^ SAMPLE_SALT, np.asarray(index)[:, None], view, draws)
    ranks = np.sort(_ranks(_tail_cdf(desc, spec), u.reshape(n, spec.draws)), axis=1)
    counts, rank = _draw_slots(ranks + spec.head, n, spec)
    rank = np.concatenate([np.broadcast_to(np.arange(spec.head), (n, spec.head)), rank], axis=1)
    used = used_slots(spec, counts)
    drawn = np.take_along_axis(order, rank, axis=1)
    ids = np.where(used, drawn, _free_ids(drawn, used, c))
    label_rank = (order == yy[:, None]).argmax(axis=1)
    above = np.take_along_axis(order, np.maximum(rank - 1, 0), axis=1)
    up = np.where(rank == 0, yy[:, None], above)
    up = np.where(used & (rank <= label_rank[:, None]), up, ids)[:, spec.head :]
    values = np.where(used, np.take_along_axis(z, ids, axis=1), np.zeros((), z.dtype))
    idt = spec.id_dtype
    return SampledRows(
        ids.astype(idt),
        counts.astype(COUNT_DTYPE),
        values.astype(z.dtype),
        up.astype(idt),
        _stats(spec, z, yy),
    )


def _head_up(ids: NDArray[np.int64], y: NDArray[np.int64]) -> NDArray[np.int64]:
    """``up`` of the head's classes [N, H] (not stored: the head is the top H in rank order,
    so the class above slot r is slot r - 1's, the label above slot 0, up to the label)."""
    h = ids.shape[1]
    if h == 0:
        return ids
    at = ids == y[:, None]
    label_rank = np.where(at.any(axis=1), at.argmax(axis=1), h)
    above = np.concatenate([y[:, None], ids[:, :-1]], axis=1)
    out: NDArray[np.int64] = np.where(np.arange(h)[None, :] <= label_rank[:, None], above, ids)
    return out


def relabel(method: str, rows: SampledRows, y: NDArray[Any], spec: SampledSpec) -> SampledRows:
    """``method`` on sampled rows: each draw (and head class) keeps its value and moves to the
    class holding its rank after the method (the method's relabel form; a method without one
    is refused)."""
    yy = np.asarray(y, dtype=np.int64)
    ids = rows.ids.astype(np.int64)
    up = np.concatenate([_head_up(ids[:, : spec.head], yy), rows.up.astype(np.int64)], axis=1)
    ids = get_method(method).on_draws(ids, up, yy)
    used = used_slots(spec, rows.counts)
    ids = np.where(used, ids, _free_ids(ids, used, spec.num_classes)).astype(rows.ids.dtype)
    stats = rows.stats.copy()
    stats[:, spec.column("label")] = stats[:, spec.column("max")]  # the label takes the max
    return SampledRows(
        ids, rows.counts.copy(), rows.values.copy(), ids[:, spec.head :].copy(), stats
    )


def estimate(spec: SampledSpec, logp0: NDArray[np.float64], rows: SampledRows) -> Any:
    """The rows' estimate of the proposal distribution [N, C] from its log ``logp0``: the
    head's probabilities exactly, the tail's mass ``m`` spread as the draws, ``m · n_j / S``."""
    n, c = logp0.shape
    h, ids = spec.head, rows.ids.astype(np.int64)
    emp = np.zeros((n, c))
    head = np.exp(np.take_along_axis(logp0, ids[:, :h], axis=1))
    np.put_along_axis(emp, ids[:, :h], head, axis=1)
    mass = np.clip(1.0 - head.sum(axis=1, keepdims=True), 0.0, 1.0) if h else np.ones((n, 1))
    share = mass * rows.counts.astype(np.float64) / spec.draws
    np.add.at(emp, (np.repeat(np.arange(n), spec.slots), ids[:, h:].ravel()), share.ravel())
    return emp


def fidelity_sums(spec: SampledSpec, z: NDArray[Any], rows: SampledRows) -> NDArray[np.float64]:
    """One chunk's sums [5]: KL(sampled || dense) at T0 (the rows' estimate of the proposal,
    :func:`estimate`, against ``softmax(z / T0)``), and for KD at T0 with a uniform held
    student, the dot product and squared norms of the dense gradient ``q - p`` and the sampled
    one ``q - estimate`` (the gradient angle over the rows is ``acos(dot / sqrt(dd * ss))``)."""
    n, c = z.shape
    zf = z.astype(np.float64)
    logp = zf / spec.proposal
    logp -= logp.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    emp = estimate(spec, logp, rows)
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
    counts, h = rows.counts.astype(np.int64), spec.head
    used, c = used_slots(spec, counts), spec.num_classes
    drawn = used[:, h:]
    masked = np.sort(np.where(used, ids, -1 - np.arange(ids.shape[1])[None, :]), axis=1)
    vals = rows.values.astype(np.float64)
    floor = np.where(drawn, vals[:, h:], -np.inf).max(axis=1, initial=-np.inf)
    unordered = np.asarray((vals[:, 1:h] > vals[:, : max(h - 1, 0)]).any(axis=1), dtype=bool)
    if h:
        unordered = unordered | (floor > vals[:, h - 1])
    return [
        (((ids < 0) | (ids >= c)) & used, f"class id outside [0, {c})"),
        (((up < 0) | (up >= c)) & drawn, f"up id outside [0, {c})"),
        ((counts.sum(axis=1) != spec.draws)[:, None], f"counts that do not sum to S={spec.draws}"),
        (~drawn[:, :-1] & drawn[:, 1:], "an empty slot before a used one"),
        (masked[:, 1:] == masked[:, :-1], "a class named twice (head or draws)"),
        (unordered[:, None], "a head not in descending order above the draws"),
        (~np.isfinite(vals) & used, "a non-finite logit"),
        (~np.isfinite(rows.stats.astype(np.float64)), "a non-finite statistic"),
    ]


def sampled_problems(spec: SampledSpec, rows: SampledRows, y: NDArray[Any]) -> list[str]:
    """What is wrong with sampled rows [N, H + W] (empty when sound): ids and ``up`` in range,
    counts summing to S, used slots first, no class twice (head ids distinct from drawn ids),
    the head in rank order, finite values and stats, the label's logit equal to its kept
    value where the label is kept."""
    out = [f"row {_first(bad)}: {what}" for bad, what in _slot_checks(spec, rows) if bad.any()]
    n = rows.ids.shape[0]
    kept = used_slots(spec, rows.counts)
    hit = (rows.ids.astype(np.int64) == np.asarray(y, dtype=np.int64)[:, None]) & kept
    label = np.ascontiguousarray(rows.stats[:, spec.column("label")])
    at = np.ascontiguousarray(rows.values[np.arange(n), hit.argmax(axis=1)])
    differ = at.view(np.uint8).reshape(n, -1) != label.view(np.uint8).reshape(n, -1)
    wrong = hit.any(axis=1) & differ.any(axis=1)
    if wrong.any():
        out.append(f"row {_first(wrong)}: the label's logit differs from its kept value")
    return out
