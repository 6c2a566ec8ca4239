"""Cross-entropy with the hard label (the ``ce`` loss), and the input checks of every loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sortkd_cache.errors import ConfigError
from sortkd_cache.losses._config import LOSSES, Loss, LossInputs

if TYPE_CHECKING:  # torch is imported when a loss is computed, not when one is configured
    from torch import Tensor

__all__ = ["CE", "ce_loss"]


def ce_loss(student: Tensor, target: Tensor) -> Tensor:
    """Mean cross-entropy of ``student`` logits ``[B, C]`` against int64 labels ``[B]``.

    float16/bfloat16 logits are upcast to float32 first; the result is a 0-dim tensor on the
    logits' device.
    """
    import torch.nn.functional as F

    _check_student_target(student, target)
    return F.cross_entropy(_compute(student), target)


@LOSSES.register("ce")
@dataclass(frozen=True)
class CE(Loss):
    """Plain cross-entropy with the hard label: no teacher, no options (makes teachers)."""

    name = "ce"
    needs_teacher = False

    def terms(self, x: LossInputs) -> dict[str, Tensor]:
        return {"ce": ce_loss(x.student, x.target)}


def _compute(x: Tensor) -> Tensor:
    """``x`` in the dtype the math runs in: float32, or float64 when ``x`` is float64."""
    import torch

    if x.dtype == torch.float64:
        return x
    return x.float()


def _check_student_target(student: Tensor, target: Tensor) -> None:
    import torch

    if student.dim() != 2:
        raise ConfigError(f"student logits must be [B, C], got shape {list(student.shape)}")
    if not student.is_floating_point():
        raise ConfigError(f"student logits must be floating point, got {student.dtype}")
    if target.dtype != torch.int64:
        raise ConfigError(f"target must be int64 class indices, got {target.dtype}")
    if target.shape != student.shape[:1]:
        raise ConfigError(
            f"target must be [B] = [{student.shape[0]}], got shape {list(target.shape)}"
        )


def _check_rows_student(student: Tensor, target: Tensor, rows: int, num_classes: int) -> Tensor:
    """A student batch against ``rows`` sparse teacher rows of ``num_classes`` classes (top-K
    or sampled): every loss's checks of the pair, then the student in the compute dtype."""
    _check_student_target(student, target)
    if student.shape[1] != num_classes:
        raise ConfigError(
            f"teacher rows {[rows, num_classes]} and student logits "
            f"{list(student.shape)} differ in shape"
        )
    return _compute(student)


def _check_teacher(student: Tensor, teacher: Tensor) -> None:
    if teacher.shape != student.shape:
        raise ConfigError(
            f"teacher logits {list(teacher.shape)} and student logits "
            f"{list(student.shape)} differ in shape"
        )
    if not teacher.is_floating_point():
        raise ConfigError(f"teacher logits must be floating point, got {teacher.dtype}")


def _check_pair(student: Tensor, teacher: Tensor) -> tuple[Tensor, Tensor]:
    """Check a student/teacher pair; return both in the compute dtype, the teacher detached.

    The teacher (often float16 from the cache) is cast to the student's compute dtype *before*
    any arithmetic, so no float16 overflow or underflow can happen in the losses.
    """
    if student.dim() != 2:
        raise ConfigError(f"student logits must be [B, C], got shape {list(student.shape)}")
    if not student.is_floating_point():
        raise ConfigError(f"student logits must be floating point, got {student.dtype}")
    _check_teacher(student, teacher)
    s = _compute(student)
    return s, teacher.detach().to(device=s.device, dtype=s.dtype)


def _check_temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ConfigError(f"temperature must be a number, got {temperature!r}")
    if not temperature > 0 or temperature == float("inf"):
        raise ConfigError(f"temperature must be a finite number > 0, got {temperature!r}")
    return float(temperature)
