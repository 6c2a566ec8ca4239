"""Dense teacher rows rebuilt from sparse rows, for a loss at a temperature (torch).

What is exact. At a recorded temperature T the rebuilt row ``r`` has, under ``softmax(r / T)``:

* every kept class's probability exact (the top K and the label),
* the tail's total probability exact (the tail: the classes outside the top K and the label),
* how the tail mass spreads over the dropped classes is the one thing a sparse row does not
  know. Two choices: ``shape=None`` spreads it uniformly (what ``info``'s fidelity measures:
  ``KL(p || q) = m * KL(p_tail / m || uniform) <= m * log(C - K)``, ``m`` the tail mass);
  ``shape=student logits`` spreads it like the student's own distribution, which makes
  ``KL(q || softmax(s / T))`` exactly the KL over the kept classes plus the tail as ONE
  bucket (``m * log(m / Q)``, ``Q`` the student's tail mass): the loss then says nothing about
  the tail's inner spread. Training uses the bucket (:mod:`._loss`).

Either way the gradient of ``T**2 * KL(q || softmax(s / T))`` with respect to the student
logits differs from the dense loss's by ``T * (p - q)`` on tail classes only, whose L1 norm per
row is at most ``2 * T * m``. At a temperature that is not recorded, the tail mass of the
nearest recorded one (in log scale) is used, so the tail mass itself is approximate too.

Everything is "exact" up to one rounding to the logits dtype of each stored number (as every
dense logit already is).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sortkd_cache.losses.lskd import STANDARDIZE_EPS
from sortkd_cache.sparse._spec import SparseRows, SparseSpec

__all__ = ["SparseTeacher", "rebuild_dense", "tail_mass"]

_FLOOR = -1e30  # a tail mass that rounding made <= 0 is taken as this (finite, below any real)


def _log_rest(log_tail: Tensor, log_label: Tensor, outside: Tensor) -> Tensor:
    """log of the tail mass without the label's own share where the label is in the tail."""
    diff = torch.exp(log_tail) - torch.where(
        outside, torch.exp(log_label), torch.zeros_like(log_tail)
    )
    return torch.where(diff > 0, torch.log(diff.clamp_min(1e-300)), torch.full_like(diff, _FLOOR))


def _shaped_tail(
    shape: Tensor, idx: Tensor, target: Tensor, top: Tensor, used: float, log_rest: Tensor
) -> Tensor:
    """``shape`` shifted per row so that its tail classes (not kept, not the label) hold
    ``exp(log_rest)`` relative to ``top`` at temperature ``used``; other entries: anything."""
    rest = torch.ones_like(shape, dtype=torch.bool)
    rest.scatter_(1, idx, False)
    rest.scatter_(1, target[:, None].long(), False)
    scaled = torch.where(rest, shape / used, torch.full_like(shape, float("-inf")))
    lse = torch.logsumexp(scaled, dim=1)
    shift = torch.where(torch.isfinite(lse), top + used * (log_rest - lse), torch.zeros_like(lse))
    return shape + shift[:, None]


def rebuild_dense(
    spec: SparseSpec,
    ids: Tensor,
    values: Tensor,
    stats: Tensor,
    target: Tensor,
    temperature: float,
    *,
    standardized: bool = False,
    dtype: torch.dtype = torch.float32,
    shape: Tensor | None = None,
) -> Tensor:
    """Dense rows ``[B, C]`` whose ``softmax(. / temperature)`` matches the sparse rows.

    ``standardized``: rebuild the z-scored row ``(z - mean) / (std + 1e-7)`` (LSKD) using the
    ``tail_std`` columns. ``shape``: logits ``[B, C]`` (the student's, detached) whose
    distribution over the tail the tail mass takes (the tail as one bucket); default uniform.
    See the module docstring for what is exact.
    """
    col, used, _ = spec.tail_column(temperature, lskd=standardized)
    v = values.to(dtype)
    st = stats.to(torch.float64)
    label = st[:, spec.column("label")]
    if standardized:
        mean = st[:, spec.column("mean"), None].to(dtype)
        scale = st[:, spec.column("std"), None].to(dtype) + STANDARDIZE_EPS
        v = (v - mean) / scale
        label = (label - mean[:, 0].double()) / scale[:, 0].double()
    idx = ids.long()
    top = v[:, 0].double()
    outside = ~(idx == target[:, None]).any(dim=1)
    n_tail = spec.num_classes - spec.k
    n_rest = n_tail - outside.long()
    log_rest = _log_rest(st[:, col], (label - top) / used, outside)
    if shape is None:
        per_class = log_rest - torch.log(n_rest.clamp_min(1).double())
        fill = (top + used * per_class).to(dtype)
        out = fill[:, None].expand(-1, spec.num_classes).clone()
    else:
        out = _shaped_tail(shape.detach().double(), idx, target, top, used, log_rest).to(dtype)
    label_v = label.to(dtype)
    out.scatter_(1, target[:, None].long(), label_v[:, None])  # overwritten below when kept
    out.scatter_(1, idx, v)
    return out


@dataclass(frozen=True)
class SparseTeacher:
    """A batch of sparse teacher rows on one device, with the spec that describes them."""

    spec: SparseSpec
    ids: Tensor
    values: Tensor
    stats: Tensor

    @classmethod
    def from_rows(cls, spec: SparseSpec, rows: SparseRows) -> SparseTeacher:
        ids = torch.from_numpy(rows.ids.astype("int64"))
        return cls(
            spec,
            ids,
            torch.from_numpy(np.array(rows.values)),
            torch.from_numpy(np.array(rows.stats)),
        )

    def to(self, device: Any, non_blocking: bool = False) -> SparseTeacher:
        def mv(t: Tensor) -> Tensor:
            return t.to(device, non_blocking=non_blocking)

        return SparseTeacher(self.spec, mv(self.ids), mv(self.values), mv(self.stats))

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def dense(
        self,
        target: Tensor,
        temperature: float,
        *,
        standardized: bool = False,
        shape: Tensor | None = None,
    ) -> Tensor:
        return rebuild_dense(
            self.spec,
            self.ids,
            self.values,
            self.stats,
            target,
            temperature,
            standardized=standardized,
            shape=shape,
        )


def tail_mass(spec: SparseSpec, rows: SparseRows, temperature: float) -> Tensor:
    """The teacher's tail probability at a recorded temperature, per row (float64)."""
    col, used, _ = spec.tail_column(temperature)
    v = torch.from_numpy(np.array(rows.values)).double()
    log_kept = torch.logsumexp((v - v[:, :1]) / used, dim=1)
    log_tail = torch.from_numpy(np.array(rows.stats)).double()[:, col]
    return torch.exp(log_tail - torch.logaddexp(log_kept, log_tail))
