"""sortkd-cache: run the teacher once, train every student from a sorted logit cache.

    import sortkd_cache as sk
    store = sk.open_store("digits.zarr")           # dir, .zip, s3://, gs://, https://
    store.num_samples, store.num_views, store.num_classes, store.labels
    store.logits("raw"), store.logits("sort")      # [N, V, C], numpy-style slicing
    sk.sort_logits(z, y), sk.swap_logits(z, y)     # numpy or torch, any leading shape
    sk.EpochBatches.from_store(store, kind="sort") # the train stage's batches, in your loop
    sk.make_loss("dkd", {"dkd_beta": 2.0})         # a loss with its paper defaults
    sk.CachedViewDataset(store, kind="sort")       # (image, label, soft logits) per view

Sparse (top-K) soft labels: ``sk.SparseSpec(k, num_classes)`` describes them,
``sk.compress_topk(z, y, spec)`` makes ``sk.SparseRows`` from dense rows (what ``dump --topk``
and ``copy --topk`` store), ``sk.apply_sparse("sort", rows, y)`` sorts them exactly, and
``sk.compute_loss(loss, student, teacher, y, epoch=1)`` trains from the ``sk.SparseTeacher``
batches that ``EpochBatches.from_store`` yields for a sparse store, as from dense ones
(``sk.compute_sparse_loss`` is its old name).

Names are imported lazily (PEP 562) so that ``import sortkd_cache`` and the CLI's ``--help``
stay fast; every name in ``__all__`` resolves on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sortkd_cache._version import __version__

if TYPE_CHECKING:
    from sortkd_cache._registry import Lazy, Registry, lazy_names
    from sortkd_cache.augment import AugmentRecipe, get_recipe, normalize, replay, sample_params
    from sortkd_cache.checkpoint import load_weights, save_weights
    from sortkd_cache.data import (
        Batch,
        CachedViewDataset,
        EpochBatches,
        SoftLabels,
        SparseViewSource,
        ViewLogits,
        check_fingerprint,
        read_view_logits,
        render,
        view_for_epoch,
    )
    from sortkd_cache.datasets import load_dataset
    from sortkd_cache.losses import (
        LOSSES,
        Loss,
        LossConfig,
        SparseTeacher,
        TeacherRows,
        compute_loss,
        compute_sparse_loss,
        make_loss,
    )
    from sortkd_cache.models import create_model, list_models, register_model
    from sortkd_cache.sorting import label_rank, sort_logits, swap_logits
    from sortkd_cache.sparse import (
        SparseRows,
        SparseSpec,
        apply_sparse,
    )
    from sortkd_cache.sparse import compress as compress_topk
    from sortkd_cache.store import (
        CacheStore,
        StoreMeta,
        copy_store,
        create_store,
        open_store,
        verify_store,
    )

#: name -> module, or (module, the name there) where the public name differs
_LAZY: dict[str, str | tuple[str, str]] = {
    "Lazy": "sortkd_cache._registry",
    "Registry": "sortkd_cache._registry",
    "lazy_names": "sortkd_cache._registry",
    "AugmentRecipe": "sortkd_cache.augment",
    "get_recipe": "sortkd_cache.augment",
    "normalize": "sortkd_cache.augment",
    "replay": "sortkd_cache.augment",
    "sample_params": "sortkd_cache.augment",
    "Batch": "sortkd_cache.data",
    "CachedViewDataset": "sortkd_cache.data",
    "EpochBatches": "sortkd_cache.data",
    "SoftLabels": "sortkd_cache.data",
    "ViewLogits": "sortkd_cache.data",
    "check_fingerprint": "sortkd_cache.data",
    "read_view_logits": "sortkd_cache.data",
    "render": "sortkd_cache.data",
    "view_for_epoch": "sortkd_cache.data",
    "load_weights": "sortkd_cache.checkpoint",
    "save_weights": "sortkd_cache.checkpoint",
    "load_dataset": "sortkd_cache.datasets",
    "LOSSES": "sortkd_cache.losses",
    "Loss": "sortkd_cache.losses",
    "LossConfig": "sortkd_cache.losses",
    "make_loss": "sortkd_cache.losses",
    "compute_loss": "sortkd_cache.losses",
    "compute_sparse_loss": "sortkd_cache.losses",
    "SparseTeacher": "sortkd_cache.losses",
    "TeacherRows": "sortkd_cache.losses",
    "create_model": "sortkd_cache.models",
    "list_models": "sortkd_cache.models",
    "register_model": "sortkd_cache.models",
    "label_rank": "sortkd_cache.sorting",
    "sort_logits": "sortkd_cache.sorting",
    "swap_logits": "sortkd_cache.sorting",
    "SparseRows": "sortkd_cache.sparse",
    "SparseSpec": "sortkd_cache.sparse",
    "SparseViewSource": "sortkd_cache.data",
    "apply_sparse": "sortkd_cache.sparse",
    "compress_topk": ("sortkd_cache.sparse", "compress"),
    "CacheStore": "sortkd_cache.store",
    "StoreMeta": "sortkd_cache.store",
    "create_store": "sortkd_cache.store",
    "open_store": "sortkd_cache.store",
    "copy_store": "sortkd_cache.store",
    "verify_store": "sortkd_cache.store",
}

__all__ = [
    "__version__",
    "AugmentRecipe",
    "Batch",
    "CacheStore",
    "CachedViewDataset",
    "EpochBatches",
    "LOSSES",
    "Lazy",
    "Loss",
    "LossConfig",
    "Registry",
    "SoftLabels",
    "SparseRows",
    "SparseSpec",
    "SparseTeacher",
    "SparseViewSource",
    "TeacherRows",
    "ViewLogits",
    "StoreMeta",
    "apply_sparse",
    "check_fingerprint",
    "compress_topk",
    "compute_loss",
    "compute_sparse_loss",
    "copy_store",
    "create_model",
    "create_store",
    "get_recipe",
    "label_rank",
    "lazy_names",
    "list_models",
    "load_dataset",
    "load_weights",
    "make_loss",
    "normalize",
    "open_store",
    "read_view_logits",
    "register_model",
    "render",
    "replay",
    "sample_params",
    "save_weights",
    "sort_logits",
    "swap_logits",
    "verify_store",
    "view_for_epoch",
]


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'sortkd_cache' has no attribute '{name}'")
    module, attr = where if isinstance(where, tuple) else (where, name)
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
