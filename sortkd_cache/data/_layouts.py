"""The training part of each logits layout: :class:`LayoutTraining`.

A store's layout (:class:`sortkd_cache.store.LogitsLayout`, registered under the name its
record gives) names its training part by ``module:name`` (``layout.training``); this layer
imports it when it first asks (:func:`training_of`), as a sort method names its torch kernel,
so the store never imports the training path. The part answers what training reads:

* ``whole_view``: the :class:`~sortkd_cache.data.SoftLabels` source of one whole view per
  epoch (the streamed source, :class:`~sortkd_cache.data.StreamedLogits`, is one for every
  layout: it reads the layout's packed chunks);
* ``teacher_rows``: the packed rows of a batch (:meth:`LogitsLayout.pack`, as tensors) as the
  losses read them: a dense tensor, or the layout's rows type;
* ``dataset_temperature`` and ``dense_rows``: what :class:`~sortkd_cache.data.CachedViewDataset`
  hands out per sample (dense logits; a sparse layout's rows rebuilt at a KD temperature).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from sortkd_cache.data._dense import ViewLogits
from sortkd_cache.data._quant import QuantViewSource, quant_teacher
from sortkd_cache.data._sampled import SampledViewSource, sampled_teacher
from sortkd_cache.data._sparse import SparseViewSource
from sortkd_cache.errors import ConfigError
from sortkd_cache.losses import SparseTeacher

if TYPE_CHECKING:
    from sortkd_cache.data._batch import SoftLabels
    from sortkd_cache.store import CacheStore, LogitsLayout

__all__ = ["DENSE", "QUANT", "SAMPLE", "TOPK", "LayoutTraining", "training_of"]

TeacherRowsOut = Any  # a [B, C] tensor or a layout's rows (losses.TeacherRows)


@dataclass(frozen=True)
class LayoutTraining:
    """What training reads from one logits layout (see the module docstring)."""

    whole_view: Callable[[CacheStore, str, torch.device | str], SoftLabels]
    teacher_rows: Callable[[LogitsLayout, Sequence[torch.Tensor]], TeacherRowsOut]
    dataset_temperature: Callable[[CacheStore, float | None], float | None]
    dense_rows: Callable[[TeacherRowsOut, torch.Tensor, float], torch.Tensor]


def _no_temperature(store: CacheStore, temperature: float | None) -> float | None:
    return temperature


def _kd_temperature(store: CacheStore, temperature: float | None) -> float:
    spec = store.layout.spec
    if temperature is None:
        temps = ", ".join(f"{t:g}" for t in spec.temperatures)
        raise ConfigError(
            f"store '{store.url}' is sparse ({store.layout.describe().lstrip('-')}): pass "
            f"temperature=T, the KD temperature (exact at the recorded {temps})"
        )
    return float(temperature)


def _topk_rows(layout: LogitsLayout, packed: Sequence[torch.Tensor]) -> SparseTeacher:
    ids, values, stats = packed
    return SparseTeacher(layout.spec, ids.to(torch.int64), values, stats)


DENSE = LayoutTraining(
    whole_view=ViewLogits,
    teacher_rows=lambda layout, packed: packed[0],
    dataset_temperature=_no_temperature,
    dense_rows=lambda rows, y, temperature: rows,
)
TOPK = LayoutTraining(
    whole_view=SparseViewSource,
    teacher_rows=_topk_rows,
    dataset_temperature=_kd_temperature,
    dense_rows=lambda rows, y, temperature: rows.dense(y, temperature),
)


def _no_dataset_rows(store: CacheStore, temperature: float | None) -> float:
    raise ConfigError(
        f"store '{store.url}' is sampled ({store.layout.describe()}): it holds draws, not "
        "rows to hand out one sample at a time; train it with kd, dkd or lskd"
    )


SAMPLE = LayoutTraining(
    whole_view=SampledViewSource,
    teacher_rows=lambda layout, packed: sampled_teacher(layout.spec, packed),
    dataset_temperature=_no_dataset_rows,
    dense_rows=lambda rows, y, temperature: rows,
)

QUANT = LayoutTraining(
    whole_view=QuantViewSource,
    teacher_rows=lambda layout, packed: quant_teacher(layout.spec, packed),
    dataset_temperature=_no_temperature,
    dense_rows=lambda rows, y, temperature: rows,
)

_RESOLVED: dict[str, LayoutTraining] = {}


def training_of(layout: LogitsLayout) -> LayoutTraining:
    """The training part ``layout`` names (imported on first use)."""
    path = type(layout).training
    if path not in _RESOLVED:
        module, _, name = path.partition(":")
        try:
            part = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigError(
                f"logits layout {layout.name!r}: training part {path!r} not found ({exc})"
            ) from None
        if not isinstance(part, LayoutTraining):
            raise ConfigError(f"logits layout {layout.name!r}: {path!r} is not a LayoutTraining")
        _RESOLVED[path] = part
    return _RESOLVED[path]
