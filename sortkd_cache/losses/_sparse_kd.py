"""KD and LSKD straight from sparse rows at a recorded temperature: no dense teacher row.

At a recorded temperature ``T`` the row that :func:`sortkd_cache.sparse.rebuild_dense` rebuilds has,
under ``softmax(. / T)``, the kept classes' probabilities ``p_i`` (top K and the label) and the
tail's total mass exact; the tail's inner spread is the student's own (``tail="bucket"``) or
uniform (``tail="uniform"``). So the KD term on that row needs only the numbers per row that
:func:`kd_table` computes once (in float64, stored as float32):

* bucket:  ``KL = sum_i p_i log p_i + m log m - sum_i p_i log q_i - m log Q``,
* uniform: ``KL = sum_i p_i log p_i + m log u - sum_i p_i log q_i - u sum_rest log q_j``,

with ``q = softmax(s / T)`` the student's distribution, ``m`` the teacher's mass on the *rest*
(the tail without the label), ``Q`` the student's mass there, and ``u = m / (number of rest
classes)``. The value and its gradient ``T * (q - p_rebuilt) / B`` are those of the dense
formula on the rebuilt row up to float32 rounding (a test compares both); what is exact is
therefore what :mod:`sortkd_cache.sparse._rebuild` states. The gradient is written out, with
the CE term's (:class:`_CEAndSparseKD`), which makes a step cost a few ``[B, C]`` operations
instead of rebuilding the row and back-propagating through the dense formula.

A whole view's tables are computed once per (temperature, tail, standardised) by
:class:`ViewTables` (what the sparse view source hands out with its batches);
rows without a view (the online twin, rows made by hand) get theirs per batch.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from sortkd_cache.losses.lskd import STANDARDIZE_EPS
from sortkd_cache.sparse import SparseSpec, log_rest

__all__ = ["SparseBatch", "ViewTables", "ce_and_sparse_kd", "direct_applies", "kd_table"]


class SparseBatch(Protocol):
    """What the kernel reads of a batch of sparse rows
    (:class:`~sortkd_cache.losses.SparseTeacher`)."""

    @property
    def spec(self) -> SparseSpec: ...
    @property
    def ids(self) -> Tensor: ...
    @property
    def values(self) -> Tensor: ...
    @property
    def stats(self) -> Tensor: ...
    @property
    def view(self) -> ViewTables | None: ...
    @property
    def idx(self) -> Tensor | None: ...


@functools.lru_cache(maxsize=64)
def direct_applies(spec: SparseSpec, temperature: float, *, standardized: bool) -> bool:
    """Whether :func:`ce_and_sparse_kd` serves this temperature: a recorded one, and at least one
    class outside the top K and the label in every row (``C - K >= 2``)."""
    _, _, exact = spec.tail_column(temperature, lskd=standardized)
    return exact and spec.num_classes - spec.k >= 2


def kd_table(
    teacher: SparseBatch, target: Tensor, temperature: float, *, tail: str, standardized: bool
) -> Tensor:
    """Per row of ``teacher``, float32 ``[K + 3]``: the slot weights ``w`` (top K, then the
    label), ``a`` (bucket: ``m``; uniform: ``u``) and ``c0`` (the teacher's ``sum p log p``
    over the rebuilt row). Slot weights: bucket ``p_i``, uniform ``p_i - u``; the label's
    slot holds 0 where the label is in the top K (its slot then repeats a kept id)."""
    spec, ids = teacher.spec, teacher.ids
    col, used, _ = spec.tail_column(temperature, lskd=standardized)
    v, st = teacher.values.double(), teacher.stats.double()
    label = st[:, spec.column("label")]
    if standardized:
        mean = st[:, spec.column("mean"), None]
        scale = st[:, spec.column("std"), None] + STANDARDIZE_EPS
        v = (v - mean) / scale
        label = (label - mean[:, 0]) / scale[:, 0]
    top = v[:, :1]
    rel = torch.cat([(v - top) / used, ((label - top[:, 0]) / used)[:, None]], 1)
    outside = (ids != target[:, None]).all(1)
    log_tail = st[:, col]
    log_z = torch.logaddexp(torch.logsumexp(rel[:, :-1], 1), log_tail)
    log_p = rel - log_z[:, None]
    p = torch.exp(log_p)
    p[:, -1] = torch.where(outside, p[:, -1], 0.0)
    log_m = log_rest(log_tail, rel[:, -1], outside) - log_z  # finite (>= about -1e30)
    m = torch.exp(log_m)
    c0 = (p * log_p).sum(1)  # sum p log p; 0 where p underflows or is the repeated label
    if tail == "bucket":
        w, a, c0 = p, m, c0 + m * log_m
    else:
        log_u = log_m - torch.log(spec.num_classes - spec.k - outside.double())
        a = torch.exp(log_u)
        w = p - a[:, None]
        w[:, -1] = torch.where(outside, w[:, -1], 0.0)
        c0 = c0 + m * log_u
    return torch.cat([w, a[:, None], c0[:, None]], 1).float()


class ViewTables:
    """A whole view's sparse rows and labels; :meth:`table` per (temperature, tail,
    standardised) is computed on first use and kept for the view."""

    def __init__(self, teacher: SparseBatch, labels: Tensor) -> None:
        self.teacher = teacher
        self.labels = labels.to(teacher.ids.device, torch.int64)
        #: the K kept class ids and the label, per row (what the loss gathers and scatters)
        self.slots = torch.cat([teacher.ids, self.labels[:, None]], 1)
        self._tables: dict[tuple[float, str, bool], Tensor] = {}

    def table(self, temperature: float, tail: str, standardized: bool) -> Tensor:
        key = (float(temperature), tail, standardized)
        got = self._tables.get(key)
        if got is None:
            got = kd_table(
                self.teacher, self.labels, temperature, tail=tail, standardized=standardized
            )
            self._tables[key] = got
        return got


def _slots_and_table(
    teacher: SparseBatch, target: Tensor, temperature: float, tail: str, standardized: bool
) -> tuple[Tensor, Tensor]:
    view, idx = teacher.view, teacher.idx
    if view is not None and idx is not None:
        slots = view.slots.index_select(0, idx)
        if torch.equal(slots[:, -1], target):  # the view's labels are the batch's targets
            return slots, view.table(temperature, tail, standardized).index_select(0, idx)
    table = kd_table(teacher, target, temperature, tail=tail, standardized=standardized)
    return torch.cat([teacher.ids, target[:, None]], 1), table


@functools.lru_cache(maxsize=16)
def _constants(
    n: int, t: float, weights: tuple[float, float], dtype: torch.dtype, device: torch.device
) -> tuple[Tensor, Tensor]:
    """The factors of the sums (CE, KD) and of their gradients, and a column of -1."""
    ce, kd = weights[0] / n, weights[1] / n
    coef = torch.tensor([ce, kd * t * t, ce, -kd * t], dtype=dtype, device=device)
    return coef, torch.full((n, 1), -1.0, dtype=dtype, device=device)


class _CEAndSparseKD(torch.autograd.Function):
    """``[ce_weight * CE(s), kd_weight * T**2 * mean_rows KL(rebuilt || softmax(z / T))]``
    from slots (the K kept ids, then the label: the CE target) and a table; ``z=None``: s."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        s: Tensor,
        z: Tensor | None,
        slots: Tensor,
        table: Tensor,
        temperature: float,
        bucket: bool,
        weights: tuple[float, float],
    ) -> Tensor:
        k1 = slots.shape[1]
        w, a, c0 = table[:, :k1], table[:, k1], table[:, k1 + 1]
        log_s = torch.log_softmax(s, 1)
        log_q = torch.log_softmax((s if z is None else z) / temperature, 1)
        kept = c0 - torch.linalg.vecdot(w, log_q.gather(1, slots))
        if bucket:  # log Q: the student's log mass outside the slots
            masked = log_q.scatter(1, slots, float("-inf"))
            row = torch.addcmul(kept, a, torch.logsumexp(masked, 1), value=-1.0)
        else:  # u times the sum of all log q (the slots' share is taken back through w)
            masked = log_q
            row = torch.addcmul(kept, a, log_q.sum(1), value=-1.0)
        coef, minus_one = _constants(s.shape[0], temperature, weights, s.dtype, s.device)
        ce = torch.nn.functional.nll_loss(log_s, slots[:, -1], reduction="sum")
        ctx.save_for_backward(log_s, log_q, masked, slots, table, coef, minus_one)
        ctx.bucket, ctx.same = bucket, z is None
        return torch.stack([ce, row.sum()]).mul_(coef[:2])

    @staticmethod
    @once_differentiable  # type: ignore[untyped-decorator]
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        """CE: ``(softmax(s) - onehot) / B``. KD: ``T / B * (q - p)``, ``p`` the rebuilt
        teacher's distribution: ``p_i`` on the slots; on the rest ``m * q_j / Q`` (bucket:
        ``m`` times the softmax of the masked log q, 0 on the slots) or ``u`` (uniform; the
        slots' ``u`` is taken back through ``w``)."""
        log_s, log_q, masked, slots, table, coef, minus_one = ctx.saved_tensors
        k1 = slots.shape[1]
        scale = grad * coef[2:]
        w, a = table[:, :k1], table[:, k1, None]
        q = log_q.exp()
        kd = torch.softmax(masked, 1).mul_(a).sub_(q) if ctx.bucket else a - q
        kd.scatter_add_(1, slots, w).mul_(scale[1])  # (p - q) * -T / B
        ce = log_s.exp()
        ce.scatter_add_(1, slots[:, k1 - 1 :], minus_one).mul_(scale[0])
        if ctx.same:
            return kd.add_(ce), None, None, None, None, None, None
        return ce, kd, None, None, None, None, None


def ce_and_sparse_kd(
    student: Tensor,
    teacher: SparseBatch,
    target: Tensor,
    temperature: float,
    *,
    tail: str,
    weights: tuple[float, float],
    standardized: Tensor | None = None,
) -> Tensor:
    """``[ce_weight * CE, kd_weight * T**2 * KL(rebuilt teacher || softmax(z / T))]`` (a
    ``[2]`` tensor; KL averaged over rows), ``student`` in its compute dtype, ``z`` the
    student or, for LSKD, ``standardized`` (the standardised student); see the module
    docstring. Needs :func:`direct_applies`."""
    slots, table = _slots_and_table(teacher, target, temperature, tail, standardized is not None)
    if table.dtype != student.dtype:
        table = table.to(student.dtype)
    out: Tensor = _CEAndSparseKD.apply(
        student, standardized, slots, table, float(temperature), tail == "bucket", weights
    )
    return out
