"""Sparse (top-K) teacher rows as the losses read them: :class:`SparseTeacher`.

Every loss reads them through :class:`~sortkd_cache.losses._rows.TeacherRows`, with the same
formula as on dense rows:

* ``kd``, ``dkd``: the dense formula on the row rebuilt at the loss temperature (``kd`` at a
  recorded temperature: the same value and gradient computed straight from the sparse row,
  up to float32 rounding, without building the dense row; see :mod:`._sparse_kd`). At a
  recorded temperature the teacher's probabilities of the kept classes (top K and the label)
  and of the tail as a whole are exact, so DKD's target/non-target split (TCKD) is exact. By
  default (``tail="uniform"``, ``DEFAULT_TAIL``) the tail's mass is spread evenly over the
  dropped classes; ``tail="bucket"`` makes the tail one bucket instead: the rebuilt tail takes
  the student's own (detached) spread, so the loss matches the tail's total mass and nothing
  inside it (see :mod:`sortkd_cache.sparse._rebuild` for both and the bound). ``train
  --sparse-tail`` chooses.
* ``lskd``: standardisation uses the row's recorded mean and std over all C classes (exact),
  and the tail mass of the standardised row at LSKD's recorded temperature (exact); the tail
  is handled as above, in the standardised space. The student is standardised as in the dense
  loss.
* ``ctkd``: the temperature is learnt, so no tail mass is recorded for it: the row is rebuilt at
  the recorded temperature nearest the current learnt temperature (approximate).
* ``ce``: no teacher.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from sortkd_cache.errors import ConfigError
from sortkd_cache.losses._sparse_kd import ce_and_sparse_kd, direct_applies
from sortkd_cache.losses.ce import _check_rows_student, _check_temperature
from sortkd_cache.losses.lskd import standardize
from sortkd_cache.sparse import DEFAULT_TAIL, TAILS, SparseRows, SparseSpec, rebuild_dense

if TYPE_CHECKING:
    from sortkd_cache.losses._sparse_kd import ViewTables

__all__ = ["SparseTeacher"]


@dataclass(frozen=True)
class SparseTeacher:
    """A batch of sparse teacher rows on one device, with the spec that describes them.

    ``view`` and ``idx`` (set by the sparse view source): the whole view these rows were taken
    from and their indices in it, so that the per-row tables of the direct KD loss
    (:mod:`._sparse_kd`) are computed once per view instead of once per batch. ``tail``: how
    the losses spread the dropped tail's mass (see the module docstring).
    """

    spec: SparseSpec
    ids: Tensor
    values: Tensor
    stats: Tensor
    view: ViewTables | None = field(default=None, repr=False, compare=False)
    idx: Tensor | None = field(default=None, repr=False, compare=False)
    tail: str = DEFAULT_TAIL

    def __post_init__(self) -> None:
        if self.tail not in TAILS:
            raise ConfigError(
                f"unknown sparse tail handling {self.tail!r}; use {' or '.join(TAILS)}"
            )

    @classmethod
    def from_rows(cls, spec: SparseSpec, rows: SparseRows) -> SparseTeacher:
        ids = torch.from_numpy(rows.ids.astype("int64"))
        return cls(
            spec,
            ids,
            torch.from_numpy(np.array(rows.values)),
            torch.from_numpy(np.array(rows.stats)),
        )

    def to(self, device: torch.device | str, non_blocking: bool = False) -> SparseTeacher:
        def mv(t: Tensor) -> Tensor:
            return t.to(device, non_blocking=non_blocking)

        ids = mv(self.ids)
        same = ids is self.ids  # not moved: the view's tables stay usable
        return SparseTeacher(
            self.spec, ids, mv(self.values), mv(self.stats),
            self.view if same else None, self.idx if same else None, self.tail,
        )  # fmt: skip

    def dkd_terms(
        self, student: Tensor, target: Tensor, alpha: float, beta: float, temperature: float
    ) -> Tensor | None:
        return None  # the dense formula on the rows' logits

    def with_tail(self, tail: str) -> SparseTeacher:
        return SparseTeacher(
            self.spec, self.ids, self.values, self.stats, self.view, self.idx, tail
        )

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def dense(
        self,
        target: Tensor,
        temperature: float | Tensor,
        *,
        standardized: bool = False,
        shape: Tensor | None = None,
    ) -> Tensor:
        """The rows rebuilt dense at ``temperature`` (``shape``: the tail's spread)."""
        return rebuild_dense(
            self.spec, self.ids, self.values, self.stats, target, temperature,
            standardized=standardized, shape=shape,
        )  # fmt: skip

    def logits(
        self,
        student: Tensor,
        target: Tensor,
        temperature: float | Tensor,
        *,
        standardized: bool = False,
    ) -> Tensor:
        """The rows rebuilt at ``temperature`` (a learnt one: its current value, read on its
        device); with
        ``tail="bucket"`` the tail takes the spread of ``student`` (detached)."""
        shape = None
        if self.tail == "bucket":
            s = student.detach()
            shape = standardize(s) if standardized else s
        t = temperature.detach() if isinstance(temperature, Tensor) else temperature
        return self.dense(target, t, standardized=standardized, shape=shape)

    def kd_terms(
        self,
        student: Tensor,
        target: Tensor,
        temperature: float,
        weights: tuple[float, float],
        *,
        standardized: bool = False,
    ) -> Tensor | None:
        """KD or LSKD at a recorded temperature straight from the rows (:mod:`._sparse_kd`);
        None at temperatures that are not recorded."""
        temperature = _check_temperature(temperature)
        if not direct_applies(self.spec, temperature, standardized=standardized):
            return None
        s = _check_rows_student(student, target, len(self), self.spec.num_classes)
        return ce_and_sparse_kd(
            s, self, target, temperature, tail=self.tail, weights=weights,
            standardized=standardize(s) if standardized else None,
        )  # fmt: skip
