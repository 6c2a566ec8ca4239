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
  the tail's inner spread. Training uses the uniform spread by default
  (:class:`sortkd_cache.losses.SparseTeacher`).

Either way the gradient of ``T**2 * KL(q || softmax(s / T))`` with respect to the student
logits differs from the dense loss's by ``T * (p - q)`` on tail classes only, whose L1 norm per
row is at most ``2 * T * m``. At a temperature that is not recorded, the tail mass of the
nearest recorded one (in log scale) is used, so the tail mass itself is approximate too.

Everything is "exact" up to one rounding to the logits dtype of each stored number (as every
dense logit already is).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from sortkd_cache.errors import ConfigError
from sortkd_cache.sparse._compress import STANDARDIZE_EPS
from sortkd_cache.sparse._spec import SparseRows, SparseSpec

__all__ = ["log_rest", "rebuild_dense", "tail_mass"]

_FLOOR = -1e30  # a tail mass that rounding made <= 0 is taken as this (finite, below any real)


def log_rest(log_tail: Tensor, log_label: Tensor, outside: Tensor) -> Tensor:
    """log of the tail mass without the label's own share where the label is in the tail
    (float64 ``[B]``; all three relative to the same reference)."""
    diff = torch.exp(log_tail) - torch.where(outside, torch.exp(log_label), 0.0)
    return torch.where(diff > 0, torch.log(diff.clamp_min(1e-300)), _FLOOR)


def _shaped_tail(
    shape: Tensor, idx: Tensor, target: Tensor, top: Tensor, used: float | Tensor, rest: Tensor
) -> Tensor:
    """``shape`` shifted per row so that its tail classes (not kept, not the label) hold
    ``exp(rest)`` relative to ``top`` at temperature ``used``; other entries: anything."""
    scaled = (shape / used).scatter_(1, idx, float("-inf")).scatter_(1, target, float("-inf"))
    lse = torch.logsumexp(scaled, dim=1).double()
    shift = torch.where(torch.isfinite(lse), top + used * (rest - lse), 0.0)
    return shape + shift.to(shape.dtype)[:, None]


def _tail_at(
    spec: SparseSpec, temperature: float | Tensor, lskd: bool, stats: Tensor
) -> tuple[Tensor, float | Tensor]:
    """(each row's recorded tail column [B], the recorded temperature used) for
    ``temperature``: a float picks the nearest recorded one on the host; a tensor (a learnt
    temperature) picks it on its device, so a training step never waits for its value."""
    if not isinstance(temperature, Tensor):
        at_col, used, _ = spec.tail_column(temperature, lskd=lskd)
        return stats[:, at_col], used
    temps = sorted(spec.lskd_temperatures if lskd else spec.temperatures)
    if not temps:
        raise ConfigError("this sparse kind records no LSKD temperature")
    name = "tail_std@{:g}" if lskd else "tail@{:g}"
    cols = torch.tensor([spec.column(name.format(t)) for t in temps], device=stats.device)
    recorded = torch.tensor(temps, dtype=torch.float64, device=stats.device)
    t = temperature.detach().to(device=stats.device, dtype=torch.float64).reshape(())
    at = torch.argmin(torch.abs(torch.log(recorded / t))).reshape(1)  # ties: the lower T
    col = stats.index_select(1, cols.index_select(0, at))[:, 0]
    return col, recorded.index_select(0, at).reshape(())


def rebuild_dense(
    spec: SparseSpec,
    ids: Tensor,
    values: Tensor,
    stats: Tensor,
    target: Tensor,
    temperature: float | Tensor,
    *,
    standardized: bool = False,
    dtype: torch.dtype = torch.float32,
    shape: Tensor | None = None,
) -> Tensor:
    """Dense rows ``[B, C]`` whose ``softmax(. / temperature)`` matches the sparse rows.

    ``standardized``: rebuild the z-scored row ``(z - mean) / (std + 1e-7)`` (LSKD) using the
    ``tail_std`` columns. ``shape``: logits ``[B, C]`` (the student's, detached) whose
    distribution over the tail the tail mass takes (the tail as one bucket); default uniform.
    Per-row numbers are computed in float64, the ``[B, C]`` ones in ``dtype``. See the module
    docstring for what is exact.
    """
    st = stats.double()
    col, used = _tail_at(spec, temperature, standardized, st)
    v = values.to(dtype)
    label = st[:, spec.column("label")]
    if standardized:
        mean = st[:, spec.column("mean"), None].to(dtype)
        scale = st[:, spec.column("std"), None].to(dtype) + STANDARDIZE_EPS
        v = (v - mean) / scale
        label = (label - mean[:, 0].double()) / scale[:, 0].double()
    idx = ids.long()
    y = target[:, None].long()
    top = v[:, 0].double()
    outside = (idx != y).all(dim=1)
    rest = log_rest(col, (label - top) / used, outside)
    if shape is None:
        n_rest = (spec.num_classes - spec.k) - outside.double()
        fill = (top + used * (rest - torch.log(n_rest.clamp_min(1.0)))).to(dtype)
        out = fill[:, None].repeat(1, spec.num_classes)
    else:
        out = _shaped_tail(shape.detach().to(dtype), idx, y, top, used, rest)
    out.scatter_(1, y, label.to(dtype)[:, None])  # overwritten below when kept
    out.scatter_(1, idx, v)
    return out


def tail_mass(spec: SparseSpec, rows: SparseRows, temperature: float) -> Tensor:
    """The teacher's tail probability at a recorded temperature, per row (float64)."""
    col, used, _ = spec.tail_column(temperature)
    v = torch.from_numpy(np.array(rows.values)).double()
    log_kept = torch.logsumexp((v - v[:, :1]) / used, dim=1)
    log_tail = torch.from_numpy(np.array(rows.stats)).double()[:, col]
    return torch.exp(log_tail - torch.logaddexp(log_kept, log_tail))
