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

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from sortkd_cache.errors import ConfigError
from sortkd_cache.losses.ce import _check_rows_student, _check_temperature, ce_loss
from sortkd_cache.losses.dkd import GT_SUPPRESSION, _binary_log_probs
from sortkd_cache.losses.lskd import STANDARDIZE_EPS, standardize

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
        log_q = torch.log_softmax(s / temperature, dim=1).gather(1, self.ids)
        log_p = self.log_probs(temperature, standardized=standardized)
        w = self.weights(temperature, standardized=standardized).to(log_q.dtype)
        return (w * (log_p.to(log_q.dtype) - log_q)).sum(dim=1) * temperature**2

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
        log_q = torch.log_softmax(s / temperature - GT_SUPPRESSION * mask.to(s.dtype), dim=1)
        log_q = log_q.gather(1, self.ids)
        log_p_nt = self.log_probs(temperature) - log_rest[:, None]
        off = (self.ids != target[:, None]).double()
        w = (self.weights(temperature) * off * torch.exp(-log_rest)[:, None]).to(s.dtype)
        nckd = (w * (log_p_nt.to(s.dtype) - log_q)).sum(dim=1)
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
        raise ConfigError(f"tail={tail!r} applies to top-K teacher rows; these rows are sampled")

    def to(self, device: torch.device | str) -> SampledTeacher:
        return SampledTeacher(
            self.spec,
            self.ids.to(device),
            self.counts.to(device),
            self.values.to(device),
            self.stats.to(device),
        )
