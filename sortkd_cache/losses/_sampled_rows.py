"""Sampled teacher rows as the losses read them: :class:`SampledTeacher` (see
:mod:`sortkd_cache.sparse._sampled` for the format, docs/sparse.md for the estimators).

A row holds S draws ``c_1..c_S`` from ``p0 = softmax(z / T0)`` as unique classes ``u_j`` with
counts ``n_j``, their logits, and the row statistics. For a target distribution ``p`` (KD's
``softmax(z / T)``, LSKD's ``softmax(zhat / T)``, DKD's non-target part) and any ``f``,

    E[ (1/S) sum_j n_j w_j f(u_j) ] = sum_c p(c) f(c),   w_j = p(u_j) / p0(u_j),

so every loss below is an unbiased estimate of its dense value, and its gradient with respect to
the student logits of the dense gradient (the student enters only through ``f``). At ``T = T0``
KD's weights are exactly 1. ``log p`` of a drawn class is exact from its stored logit and the
recorded ``logsumexp`` at T (hence: recorded temperatures only; others are refused in one line).

* KD: ``T^2 (1/S) sum_j n_j w_j (log p_T(u_j) - log q_T(u_j))``.
* LSKD: the same on the z-scored rows (the row's recorded mean and std; student z-scored).
* DKD: TCKD is exact (the label's logit is stored); NCKD is
  ``(1/S) sum_{u_j != y} n_j w_j / (1 - p_T(y)) (log p_nt(u_j) - log q_nt(u_j))``.
* CTKD: refused (a learnt temperature has no recorded normaliser).

A hybrid row (``spec.head`` = H > 0) names the teacher's top H classes first, exactly, then
draws from the rest, ``q0 = p0 / m0`` outside the head (``m0 = 1 - sum_h p0(h)``, exact from
the head's logits and ``lse@T0``). Every estimate above keeps its form with the weights
``p(h)`` on the head and ``m0 (n_j / S) p(u_j) / p0(u_j)`` on the draws (:meth:`weights`),
unbiased at every recorded T: the head's ``p_T(h)`` needs only the row's recorded
normaliser at T.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from sortkd_cache.errors import ConfigError
from sortkd_cache.losses.ce import _check_rows_student, _check_temperature, ce_loss
from sortkd_cache.losses.dkd import GT_SUPPRESSION, _binary_log_probs
from sortkd_cache.losses.lskd import STANDARDIZE_EPS, standardize
from sortkd_cache.sparse import DEFAULT_SAMPLED_TAIL, SAMPLED_TAILS

if TYPE_CHECKING:
    from sortkd_cache.losses._config import TeacherRows
    from sortkd_cache.sparse import SampledSpec

__all__ = ["SampledTeacher"]


@dataclass(frozen=True)
class SampledTeacher:
    """A batch of sampled teacher rows on one device, with the spec that describes them."""

    spec: SampledSpec
    ids: Tensor  # int64 [B, H + W]: the head, then the draws
    counts: Tensor  # [B, W]
    values: Tensor  # [B, H + W] logits dtype
    stats: Tensor  # [B, P] logits dtype
    #: how the classes the rows do not name enter the losses: ``student`` or ``counts``
    tail: str = DEFAULT_SAMPLED_TAIL

    def __post_init__(self) -> None:
        if self.tail not in SAMPLED_TAILS:
            raise ConfigError(
                f"unknown sampled tail handling {self.tail!r}; use {' or '.join(SAMPLED_TAILS)}"
            )

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def _col(self, name: str) -> Tensor:
        return self.stats[:, self.spec.column(name)].double()

    def _lse(self, temperature: float, standardized: bool) -> Tensor:
        temps = self.spec.lskd_temperatures if standardized else self.spec.temperatures
        if temperature not in temps:
            what = "LSKD temperatures" if standardized else "temperatures"
            raise ConfigError(
                f"temperature {temperature:g} is not recorded in this sampled store; its "
                f"{what} are {', '.join(f'{t:g}' for t in temps)}"
            )
        return self._col(f"lse_std@{temperature:g}" if standardized else f"lse@{temperature:g}")

    def log_probs(self, temperature: float, *, standardized: bool = False) -> Tensor:
        """``log p`` of the named classes under the loss's teacher distribution [B, H + W]."""
        z, mx = self.values.double(), self._col("max")[:, None]
        lse = self._lse(temperature, standardized)[:, None]
        if standardized:
            scale = self._col("std")[:, None] + STANDARDIZE_EPS
            return (z - mx) / (scale * temperature) - lse
        return (z - mx) / temperature - lse

    def weights(self, temperature: float, *, standardized: bool = False) -> Tensor:
        """Each named class's weight [B, H + W] (float64): the head's exact probabilities
        ``p(h)``, then the draws' ``m0 (n_j / S) p(u_j) / p0(u_j)`` (``m0``: the proposal's
        mass outside the head, 1 without one)."""
        share = self.counts.double() / self.spec.draws
        if not self.spec.head and not standardized and temperature == self.spec.proposal:
            return share
        log_p0 = self.log_probs(self.spec.proposal)
        log_p = self.log_probs(temperature, standardized=standardized)
        h = self.spec.head
        if not h:
            return share * torch.exp(log_p - log_p0)
        mass = (1.0 - log_p0[:, :h].exp().sum(dim=1, keepdim=True)).clamp(0.0, 1.0)
        tail = mass * share * torch.exp(log_p[:, h:] - log_p0[:, h:])
        return torch.cat([log_p[:, :h].exp(), tail], dim=1)

    def _check(self, student: Tensor, target: Tensor) -> Tensor:
        return _check_rows_student(student, target, len(self), self.spec.num_classes)

    def kd_rows(self, student: Tensor, temperature: float, *, standardized: bool = False) -> Tensor:
        """The KD (LSKD with ``standardized``) estimate of each row [B], times T^2."""
        s = standardize(student) if standardized else student
        log_p = self.log_probs(temperature, standardized=standardized)
        w = self.weights(temperature, standardized=standardized)
        return self._kl(s / temperature, w, log_p, None) * temperature**2

    def _kl(self, z: Tensor, w: Tensor, log_p: Tensor, exclude: Tensor | None) -> Tensor:
        """``KL(p || softmax(z))`` per row [B] estimated from the named classes' weights ``w``
        and ``log p``; ``exclude`` [B, C] marks classes outside ``p`` (NCKD's label)."""
        log_q = torch.log_softmax(z, dim=1)
        w, log_p = w.to(z.dtype), log_p.to(z.dtype)
        if self.tail == "counts":
            return (w * (log_p - log_q.gather(1, self.ids))).sum(dim=1)
        return (w * log_p).sum(dim=1) + self._student_cross(z, log_q, w, log_p, exclude)

    def _student_cross(
        self, z: Tensor, log_q: Tensor, w: Tensor, log_p: Tensor, exclude: Tensor | None
    ) -> Tensor:
        """``-sum_c p(c) log q(c)`` per row with ``lam * c`` as a control variate outside the
        head, ``c`` the student's own probabilities there (held fixed): ``p^ = lam c + sum_j
        w_j (1 - lam c_j / p_j)`` at the named classes (the head's ``c`` is 0), its mass made
        1 by spreading ``1 - sum p^`` over the classes outside the head in proportion to
        ``c``. ``E[p^] = p`` for every ``c`` and every ``lam`` that does not depend on the
        row's draws (:func:`_scale`), the spread term having mean 0."""
        c = log_q.detach().exp()
        drop = torch.zeros_like(c, dtype=torch.bool)
        if self.spec.head:
            drop.scatter_(1, self.ids[:, : self.spec.head], True)
        c = c.masked_fill(drop if exclude is None else drop | exclude, 0.0)
        ratio = c.gather(1, self.ids) * torch.exp(-log_p)
        lam = _scale(c.sum(dim=1), (w * ratio**2).sum(dim=1))[:, None]
        corr = torch.where(w == 0, 0.0, w * (1.0 - lam * ratio))
        p_hat = (lam * c).scatter_add(1, self.ids, corr)
        shape = c / c.sum(dim=1, keepdim=True).clamp(min=torch.finfo(c.dtype).tiny)
        p_hat = p_hat + (1.0 - p_hat.sum(dim=1, keepdim=True)) * shape
        if exclude is not None:  # outside p (NCKD's label): p^ is 0 there, log q may be -inf
            log_q = log_q.masked_fill(exclude, 0.0)
        return -(p_hat * log_q).sum(dim=1)

    def kd_terms(
        self,
        student: Tensor,
        target: Tensor,
        temperature: float,
        weights: tuple[float, float],
        *,
        standardized: bool = False,
    ) -> Tensor:
        """``[ce_weight * CE, kd_weight * KD]`` from the draws (see the module docstring)."""
        temperature = _check_temperature(temperature)
        s = self._check(student, target)
        kd = self.kd_rows(s, temperature, standardized=standardized).mean()
        return torch.stack([weights[0] * ce_loss(student, target), weights[1] * kd])

    def dkd_terms(
        self, student: Tensor, target: Tensor, alpha: float, beta: float, temperature: float
    ) -> Tensor:
        """``(alpha * TCKD + beta * NCKD) * T^2``: TCKD exact, NCKD estimated from the draws."""
        return self.dkd_rows(student, target, alpha, beta, temperature).mean()

    def dkd_rows(
        self, student: Tensor, target: Tensor, alpha: float, beta: float, temperature: float
    ) -> Tensor:
        """The DKD estimate of each row [B], times T^2."""
        temperature = _check_temperature(temperature)
        s = self._check(student, target)
        mask = torch.zeros_like(s, dtype=torch.bool).scatter_(1, target.unsqueeze(1), True)
        log_b_s = _binary_log_probs(s / temperature, mask)
        lse = self._lse(temperature, False)
        log_py = (self._col("label") - self._col("max")) / temperature - lse
        log_rest = torch.log(-torch.expm1(log_py.clamp(max=-1e-12)))  # log(1 - p_T(y))
        log_b_t = torch.stack([log_py, log_rest], dim=1).to(s.dtype)
        tckd = (log_b_t.exp() * (log_b_t - log_b_s)).sum(dim=1)
        z = s / temperature - GT_SUPPRESSION * mask.to(s.dtype)
        log_p_nt = self.log_probs(temperature) - log_rest[:, None]
        off = (self.ids != target[:, None]).double()
        nckd = self._kl(z, self.weights(temperature) * off * torch.exp(-log_rest)[:, None],
                        log_p_nt, mask)  # fmt: skip
        return (alpha * tckd + beta * nckd) * temperature**2

    def logits(
        self,
        student: Tensor,
        target: Tensor,
        temperature: float | Tensor,
        *,
        standardized: bool = False,
    ) -> Tensor:
        raise ConfigError(
            "a sampled store holds draws, not dense teacher rows: train it with kd, dkd or lskd"
        )

    def with_tail(self, tail: str) -> TeacherRows:
        return replace(self, tail=tail)  # checked in __post_init__

    def to(self, device: torch.device | str) -> SampledTeacher:
        return replace(
            self,
            ids=self.ids.to(device),
            counts=self.counts.to(device),
            values=self.values.to(device),
            stats=self.stats.to(device),
        )


def _scale(mass: Tensor, second: Tensor) -> Tensor:
    """Each row's control-variate scale [B] in [0, 1]: ``sum c / sum c^2 / p`` over the tail
    (the scale of least variance), both sums taken over the batch's *other* rows (the second
    estimated from their draws), so a row's scale is independent of its own draws and its
    estimate stays unbiased; 0 for a batch of one row."""
    rest_mass, rest_second = mass.sum() - mass, second.sum() - second
    lam = torch.where(rest_second > 0, rest_mass / rest_second.clamp(min=1e-30), 0.0)
    return lam.clamp(0.0, 1.0)
