"""The teacher's rows of one batch as every loss reads them: dense or sparse, one protocol.

A loss asks its :class:`TeacherRows` (declared in :mod:`._config`, beside
:class:`~._config.LossInputs`) two questions:

* :meth:`~TeacherRows.logits`: the dense teacher logits ``[B, C]`` its formula sees at its
  temperature. :class:`DenseRows` (a ``[B, C]`` tensor, e.g. a dense store's view or an
  online teacher) answers with the tensor itself (z-scored for LSKD);
  :class:`~sortkd_cache.losses.SparseTeacher` (top-K rows) with the row rebuilt at that
  temperature (what is exact: :mod:`sortkd_cache.sparse._rebuild`).
* :meth:`~TeacherRows.kd_terms`: KD's two weighted terms computed straight from the rows, where
  the rows know a faster way than the dense formula (sparse rows at a recorded temperature);
  None otherwise.

:func:`teacher_rows` turns what a caller passes (a tensor, rows, or None) into rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sortkd_cache.errors import ConfigError
from sortkd_cache.losses._config import TeacherRows
from sortkd_cache.losses.ce import _check_pair
from sortkd_cache.losses.lskd import standardize

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["DenseRows", "TeacherRows", "teacher_rows"]


@dataclass(frozen=True)
class DenseRows:
    """Dense teacher logits ``[B, C]`` (any float dtype): every loss's own formula applies."""

    tensor: Tensor

    def __len__(self) -> int:
        return int(self.tensor.shape[0])

    def logits(
        self,
        student: Tensor,
        target: Tensor,
        temperature: float | Tensor,
        *,
        standardized: bool = False,
    ) -> Tensor:
        if not standardized:
            return self.tensor
        return standardize(_check_pair(student, self.tensor)[1])

    def kd_terms(
        self,
        student: Tensor,
        target: Tensor,
        temperature: float,
        weights: tuple[float, float],
        *,
        standardized: bool = False,
    ) -> Tensor | None:
        return None

    def dkd_terms(
        self, student: Tensor, target: Tensor, alpha: float, beta: float, temperature: float
    ) -> Tensor | None:
        return None  # the dense formula on the rows' logits

    def with_tail(self, tail: str) -> TeacherRows:
        raise ConfigError(
            f"tail={tail!r} applies to sparse (top-K) teacher rows; these are dense logits"
        )


def teacher_rows(teacher: Tensor | TeacherRows | None, tail: str | None) -> TeacherRows | None:
    """``teacher`` as rows: a tensor becomes :class:`DenseRows`; ``tail`` (None: the rows'
    own) sets the tail handling of sparse rows and is refused for dense ones."""
    import torch

    if teacher is None:
        return None
    rows: TeacherRows = DenseRows(teacher) if isinstance(teacher, torch.Tensor) else teacher
    return rows if tail is None else rows.with_tail(tail)
