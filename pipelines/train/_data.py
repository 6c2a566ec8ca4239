"""The train stage's soft-label source.

The batches and the store's sources are the library's (:mod:`sortkd_cache.data`: the same
code a researcher's own loop runs). The stage adds one source of its own,
:class:`OnlineTeacher` (``--online-teacher``): the teacher computes the logits of the same
replayed batch on the fly, with the same sort/swap per batch and the store's dtype, to prove
that the cache gives the same training and to measure the saving. ``--topk K`` on a dense
store wraps the store's source in :class:`~sortkd_cache.data.TopKRows`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from sortkd_cache.data import (
    Batch,
    QuantizeRows,
    SampleRows,
    SoftLabels,
    TopKRows,
    online_sparse_teacher,
    store_soft_labels,
)
from sortkd_cache.errors import ConfigError
from sortkd_cache.models import teacher_logits
from sortkd_cache.pipelines.common.helpers import build_teacher
from sortkd_cache.pipelines.common.preprocess import PreprocessOptions, resolve_preprocess
from sortkd_cache.sorting import get_method
from sortkd_cache.sparse import quant_spec_for, sampled_spec_for

if TYPE_CHECKING:
    from sortkd_cache.datasets import DatasetInfo
    from sortkd_cache.losses import SparseTeacher
    from sortkd_cache.models import TeacherPreprocess
    from sortkd_cache.pipelines.train._setup import Setup
    from sortkd_cache.sorting import LogitsMethod
    from sortkd_cache.sparse import SparseSpec
    from sortkd_cache.store import CacheStore

__all__ = ["OnlineTeacher", "soft_labels_for"]


class OnlineTeacher:
    """Soft labels computed by a teacher model from each batch's images."""

    def __init__(
        self,
        teacher: torch.nn.Module,
        method: LogitsMethod | None,
        dtype: torch.dtype | None,
        sparse: tuple[SparseSpec, str] | None = None,
        prep: tuple[DatasetInfo, TeacherPreprocess] | None = None,
    ) -> None:
        self.teacher, self.method, self.dtype, self.sparse = teacher, method, dtype, sparse
        self.prep = prep  # the teacher's own preprocessing, when not the dataset's

    def teacher_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """The batch's views (normalised for the student) as the teacher sees them: back to
        their uint8 pixels (exact: the rounding error is far below half a level), then the
        teacher's own preprocessing, as ``dump`` gives it."""
        if self.prep is None:
            return x
        info, prep = self.prep
        shape = (-1, 1, 1)
        mean = torch.tensor(info.mean, dtype=x.dtype, device=x.device).view(shape)
        std = torch.tensor(info.std, dtype=x.dtype, device=x.device).view(shape)
        pixels = ((x * std + mean) * 255.0).round().clamp(0, 255).to(torch.uint8)
        return prep.apply(pixels)

    def begin_epoch(self, view: int, local_order: torch.Tensor, next_view: int | None) -> None:
        return None

    def rows(self, batch: Batch) -> torch.Tensor | SparseTeacher:
        z = teacher_logits(self.teacher, self.teacher_inputs(batch.x), batch.x.shape[0])
        if self.sparse is not None:  # the cache's truncation: store dtype, top K, then sort
            return online_sparse_teacher(self.sparse[0], z, batch.y, self.sparse[1])
        if self.dtype is not None:
            z = z.to(self.dtype)
        return self.method(z, batch.y) if self.method is not None else z

    def close(self) -> None:
        return None


def _own_preprocess(s: Setup) -> tuple[DatasetInfo, TeacherPreprocess] | None:
    """The online teacher's own preprocessing (timm's, pretrained torchvision weights'), or
    None where it is the dataset's normalisation at the view's size."""
    cfg, info = s.cfg, s.train.info
    arch = str(cfg.online_teacher)
    prep = resolve_preprocess(arch, None, cfg.teacher_init, info, PreprocessOptions())
    same = prep.input_size is None and (prep.mean, prep.std) == (tuple(info.mean), tuple(info.std))
    return None if same else (info, prep)


def soft_labels_for(s: Setup, device: torch.device, needs_teacher: bool) -> SoftLabels | None:
    """The run's source: the online teacher, the store's ``--logits`` kind, or None (CE)."""
    cfg = s.cfg
    if cfg.online_teacher is not None:
        teacher, _ = build_teacher(
            cfg.online_teacher,
            s.num_classes,
            s.train.info.channels,
            ckpt=cfg.teacher_ckpt,
            init=cfg.teacher_init,
            seed=s.teacher_seed,
            device=device,
        )
        method = None if cfg.logits == "raw" else get_method(cfg.logits)
        store_fp16 = s.store is not None and s.store.meta.dtype == "float16"
        sparse = (s.sparse, cfg.logits) if s.sparse is not None else None
        dtype = torch.float16 if store_fp16 else None
        return OnlineTeacher(teacher, method, dtype, sparse, _own_preprocess(s))
    if not needs_teacher:
        return None
    if s.store is None:
        raise ConfigError(f"--loss {cfg.loss} needs --cache STORE or --online-teacher ARCH")
    stream, meta, c = s.plan.mode == "stream", s.store.meta, s.num_classes
    if cfg.sample is not None:  # --sample S on a dense store (checked in the setup)
        spec = sampled_spec_for(cfg.sample, c, meta.dtype, None, meta.seed, cfg.sample_head)
        return SampleRows(_raw_rows(s.store, cfg.logits, device, stream), spec, cfg.logits)
    if cfg.quantize is not None:  # --quantize B on a dense store (checked in the setup)
        qspec = quant_spec_for(cfg.quantize, c, meta.dtype)
        return QuantizeRows(_raw_rows(s.store, cfg.logits, device, stream), qspec, cfg.logits)
    source = store_soft_labels(s.store, cfg.logits, device, stream=stream)
    if s.sparse is not None and s.store.layout.topk_per_batch:  # --topk K on a dense store
        return TopKRows(source, s.sparse)
    return source


def _raw_rows(store: CacheStore, kind: str, device: torch.device, stream: bool) -> SoftLabels:
    """The raw kind's rows for ``kind`` made batch by batch from them (``--sample``,
    ``--quantize``: as ``copy`` makes a derived kind, the method on the raw rows); ``kind``
    must still be in the store, complete."""
    store.kind_array(kind)  # refuse a missing or incomplete kind now
    return store_soft_labels(store, "raw", device, stream=stream)
