"""The training losses from sparse teacher rows: :func:`compute_sparse_loss`.

The same weighted terms as :func:`sortkd_cache.losses.compute_loss`, with the teacher rebuilt
from its sparse form (:func:`~._rebuild.rebuild_dense`) at the loss's own temperature:

* ``kd``, ``dkd``: the dense formula on the row rebuilt at the loss temperature (``kd`` at a
  recorded temperature: the same value and gradient computed straight from the sparse row,
  up to float32 rounding, without building the dense row; see :mod:`._kd`). At a recorded
  temperature the teacher's probabilities of the kept classes (top K and the label) and of the
  tail as a whole are exact, so DKD's target/non-target split (TCKD) is exact. By default
  (``tail="uniform"``, ``DEFAULT_TAIL``) the tail's mass is spread evenly over the dropped
  classes; ``tail="bucket"`` makes the tail one bucket instead: the rebuilt tail takes the
  student's own (detached) spread, so the loss matches the tail's total mass and nothing inside
  it (see :mod:`._rebuild` for both and the bound). ``train --sparse-tail`` chooses.
* ``lskd``: standardisation uses the row's recorded mean and std over all C classes (exact),
  and the tail mass of the standardised row at LSKD's recorded temperature (exact); the tail
  is handled as above, in the standardised space. The student is standardised as in the dense
  loss.
* ``ctkd``: the temperature is learnt, so no tail mass is recorded for it: the row is rebuilt at
  the recorded temperature nearest the current learnt temperature (approximate).
* ``ce``: no teacher.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sortkd_cache.errors import ConfigError
from sortkd_cache.losses import CTKD, KD, LSKD, Loss, compute_loss
from sortkd_cache.losses._temperature import CTKDTemperature
from sortkd_cache.losses.ce import (
    _check_pair,
    _check_student_target,
    _check_temperature,
    _compute,
    ce_loss,
)
from sortkd_cache.losses.kd import _kd
from sortkd_cache.losses.lskd import standardize
from sortkd_cache.sparse._kd import ce_and_sparse_kd, direct_applies
from sortkd_cache.sparse._rebuild import SparseTeacher
from sortkd_cache.sparse._spec import DEFAULT_TAIL, TAILS

__all__ = ["TAILS", "compute_sparse_loss", "loss_temperature", "sparse_teacher_dense"]


def loss_temperature(cfg: Loss, temperature_module: CTKDTemperature | None = None) -> float:
    """The temperature ``cfg``'s distillation term runs at (CTKD: the current learnt one)."""
    if isinstance(cfg, CTKD):
        module = temperature_module or cfg.make_temperature_module()
        if module is None:  # pragma: no cover - CTKD always has one
            raise ConfigError("ctkd needs a temperature module")
        with torch.no_grad():
            return float(module(0.0).detach())
    temperature = getattr(cfg, "temperature", None)
    if temperature is None:
        raise ConfigError(f"loss {cfg.name!r} has no distillation temperature")
    return float(temperature)


def sparse_teacher_dense(
    cfg: Loss,
    teacher: SparseTeacher,
    target: Tensor,
    temperature_module: CTKDTemperature | None = None,
    *,
    student: Tensor | None = None,
    tail: str = DEFAULT_TAIL,
) -> Tensor:
    """The dense teacher rows ``cfg``'s loss sees (standardised ones for ``lskd``); with
    ``tail="bucket"`` the tail takes the spread of ``student`` (detached)."""
    if tail not in TAILS:
        raise ConfigError(f"unknown sparse tail handling {tail!r}; use bucket or uniform")
    if tail == "bucket" and student is None:
        raise ConfigError("tail='bucket' needs the student's logits")
    t = loss_temperature(cfg, temperature_module)
    lskd = cfg.name == "lskd"
    shape = None
    if tail == "bucket" and student is not None:
        shape = standardize(student.detach()) if lskd else student.detach()
    return teacher.dense(target, t, standardized=lskd, shape=shape)


def compute_sparse_loss(
    cfg: Loss,
    student: Tensor,
    teacher: SparseTeacher | None,
    target: Tensor,
    *,
    epoch: int,
    temperature_module: CTKDTemperature | None = None,
    tail: str = DEFAULT_TAIL,
) -> tuple[Tensor, dict[str, float]]:
    """``compute_loss`` with a sparse teacher; see the module docstring for what is exact."""
    if teacher is None or cfg.name == "ce":
        return compute_loss(cfg, student, None, target, epoch=epoch)
    direct = _direct_kd(cfg, student, teacher, target, epoch, tail)
    if direct is not None:
        return direct
    dense = sparse_teacher_dense(
        cfg, teacher, target, temperature_module, student=student, tail=tail
    )
    if not isinstance(cfg, LSKD):
        return compute_loss(
            cfg, student, dense, target, epoch=epoch, temperature_module=temperature_module
        )
    # LSKD: the rebuilt teacher is already standardised with the recorded mean and std
    _check_epoch(epoch)
    s, t = _check_pair(student, dense)
    ce = cfg.ce_weight * ce_loss(student, target)
    kd = cfg.kd_weight * _kd(standardize(s), t, _check_temperature(cfg.temperature))
    return _total(ce, kd)


def _check_epoch(epoch: int) -> None:
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
        raise ConfigError(f"epoch must be an integer >= 1 (epochs count from 1), got {epoch!r}")


def _total(ce: Tensor, kd: Tensor) -> tuple[Tensor, dict[str, float]]:
    values = torch.stack([ce.detach(), kd.detach()]).tolist()
    return ce + kd, {"ce": float(values[0]), "kd": float(values[1])}


def _direct_kd(
    cfg: Loss, student: Tensor, teacher: SparseTeacher, target: Tensor, epoch: int, tail: str
) -> tuple[Tensor, dict[str, float]] | None:
    """KD or LSKD at a recorded temperature straight from the sparse rows (:mod:`._kd`);
    None where that does not apply (other losses, temperatures that are not recorded)."""
    if not isinstance(cfg, KD) or type(cfg) not in (KD, LSKD):
        return None
    lskd = isinstance(cfg, LSKD)
    temperature = _check_temperature(cfg.temperature)
    if not direct_applies(teacher.spec, temperature, standardized=lskd):
        return None
    if tail not in TAILS:
        raise ConfigError(f"unknown sparse tail handling {tail!r}; use bucket or uniform")
    _check_epoch(epoch)
    _check_student_target(student, target)
    if student.shape[1] != teacher.spec.num_classes:
        raise ConfigError(
            f"teacher logits {[len(teacher), teacher.spec.num_classes]} and student logits "
            f"{list(student.shape)} differ in shape"
        )
    s = _compute(student)
    terms = ce_and_sparse_kd(
        s, teacher, target, temperature, tail=tail, weights=(cfg.ce_weight, cfg.kd_weight),
        standardized=standardize(s) if lskd else None,
    )  # fmt: skip
    ce, kd = terms.detach().tolist()
    return terms.sum(), {"ce": float(ce), "kd": float(kd)}
