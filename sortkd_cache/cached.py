"""Training from a cache in your own loop: the batches of an epoch, views, soft labels.

    import sortkd_cache as sk
    store = sk.open_store("digits.zarr")
    batches = sk.EpochBatches.from_store(store, kind="sort", batch_size=64, seed=0)
    for epoch in range(E):
        for b in batches.epoch(epoch):      # view = epoch mod V
            ...                             # b.x, b.y, b.soft: the teacher's (sorted) logits

:class:`~sortkd_cache.batches.EpochBatches` is the code the ``train`` stage runs (both its
in-memory device path and its DataLoader path), so this loop sees the stage's batches for the
same seed and epoch; its soft labels come from a :class:`~sortkd_cache.soft_labels.SoftLabels`
source (:class:`~sortkd_cache.soft_labels.ViewLogits` for a dense kind).
:class:`CachedViewDataset` is the per-sample view of the same data, for a ``DataLoader`` with
your own sampler: item i is the augmented image the teacher saw for the current view (its
recorded parameters replayed), normalised, with the label and the soft logits (float32).
From a sparse (top-K) store pass ``temperature=T``: the soft logits are the rows rebuilt
from the top K for KD at T (exact probabilities of the kept classes and of the tail at a
recorded temperature, the tail spread uniformly over the dropped classes; see
:mod:`sortkd_cache.sparse`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from sortkd_cache.batches import EpochBatches, FreshViews, StoredViews
from sortkd_cache.errors import ConfigError, FingerprintMismatchError
from sortkd_cache.soft_labels import Batch, SoftLabels, ViewLogits, read_view_logits

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sortkd_cache.augment import AugmentRecipe
    from sortkd_cache.datasets import ImageDataset
    from sortkd_cache.store import CacheStore

__all__ = [
    "Batch",
    "CachedViewDataset",
    "EpochBatches",
    "FreshViews",
    "SoftLabels",
    "StoredViews",
    "ViewLogits",
    "check_fingerprint",
    "load_store_dataset",
    "read_view_logits",
    "render",
    "view_for_epoch",
]


def render(
    images: torch.Tensor | Sequence[torch.Tensor],
    params: np.ndarray | torch.Tensor,
    recipe: AugmentRecipe,
    mean: Sequence[float],
    std: Sequence[float],
) -> torch.Tensor:
    """Replay recorded parameters onto uint8 images and normalise: float32 [B, C, h, w]."""
    from sortkd_cache.augment import normalize, replay

    return normalize(replay(images, params, recipe), mean, std)


def view_for_epoch(epoch: int, num_views: int, order: str = "cyclic", seed: int = 0) -> int:
    """The stored view epoch ``epoch`` (0-based) trains on.

    ``cyclic``: ``epoch mod V``. ``shuffle``: every block of V epochs visits each view once,
    in an order drawn from (seed, block) — still deterministic and resumable.
    """
    if num_views < 1:
        raise ConfigError(f"num_views must be >= 1, got {num_views}")
    if order == "cyclic":
        return epoch % num_views
    if order == "shuffle":
        rng = np.random.Generator(np.random.Philox(key=[seed, epoch // num_views]))
        return int(rng.permutation(num_views)[epoch % num_views])
    raise ConfigError(f"unknown --views-order '{order}'; use cyclic or shuffle")


def check_fingerprint(store: CacheStore, dataset: ImageDataset) -> None:
    """Refuse a dataset whose content differs from the one the store was made from."""
    want = store.meta.dataset.fingerprint
    got = dataset.fingerprint()
    if want != got:
        raise FingerprintMismatchError(
            f"dataset '{dataset.info.spec}' has fingerprint {got[:23]}..., but store "
            f"'{store.url}' was made from {store.meta.dataset.spec} with {want[:23]}..."
        )
    if len(dataset) != store.num_samples:
        raise FingerprintMismatchError(
            f"dataset has {len(dataset)} samples, store '{store.url}' has {store.num_samples}"
        )


def load_store_dataset(
    store: CacheStore,
    spec: str | None = None,
    *,
    split: str = "train",
    data_root: str | None = None,
    check: bool = True,
) -> ImageDataset:
    """The dataset split a store was made from (``spec`` overrides, e.g. for imagefolder)."""
    from sortkd_cache.datasets import load_dataset

    ds = load_dataset(spec or store.meta.dataset.spec, split, data_root=data_root)
    if check and split == store.meta.dataset.split:
        check_fingerprint(store, ds)
    return ds


def _rebuilt_view(store: CacheStore, kind: str, view: int, temperature: float) -> np.ndarray:
    """A sparse view's rows rebuilt dense (float32 [N, C]) for KD at ``temperature``: kept
    classes and the tail mass exact at a recorded temperature, the tail spread uniformly."""
    from sortkd_cache.losses import SparseTeacher
    from sortkd_cache.sparse import read_sparse_view

    teacher = SparseTeacher.from_rows(store.sparse_spec, read_sparse_view(store, kind, view))
    rebuilt = teacher.dense(torch.from_numpy(store.labels), temperature)
    out: np.ndarray = rebuilt.numpy()
    return out


class CachedViewDataset(torch.utils.data.Dataset[tuple[torch.Tensor, int, torch.Tensor]]):
    """(augmented image, label, soft logits) for one stored view; see the module docstring."""

    def __init__(
        self,
        store: CacheStore,
        dataset: ImageDataset | None = None,
        *,
        kind: str = "sort",
        view: int = 0,
        data_root: str | None = None,
        temperature: float | None = None,
    ) -> None:
        from sortkd_cache.augment import AugmentRecipe

        self.store = store
        self.kind = kind
        self.temperature = temperature
        if store.is_sparse:  # soft logits: the dense rows rebuilt at ``temperature``
            store.sparse_logits(kind)
            if temperature is None:
                temps = ", ".join(f"{t:g}" for t in store.sparse_spec.temperatures)
                raise ConfigError(
                    f"store '{store.url}' is sparse (top-{store.sparse_spec.k}): pass "
                    f"temperature=T, the KD temperature (exact at the recorded {temps})"
                )
        else:
            store.logits(kind)  # fail early when the kind is missing
        self.dataset = (
            dataset if dataset is not None else load_store_dataset(store, data_root=data_root)
        )
        if dataset is not None:
            check_fingerprint(store, dataset)
        self.recipe = AugmentRecipe.from_dict(store.meta.augment)
        self.labels = store.labels
        self.views = StoredViews(store)
        self.view = -1
        self.set_view(view)

    def set_view(self, view: int) -> None:
        if not 0 <= view < self.store.num_views:
            raise ConfigError(f"view {view} outside [0, {self.store.num_views})")
        if view != self.view:
            self.view = view
            self.params = self.views.params(view, view)
            self.soft = (
                _rebuilt_view(self.store, self.kind, view, float(self.temperature))
                if self.store.is_sparse and self.temperature is not None
                else read_view_logits(self.store, self.kind, view)
            )

    def set_epoch(self, epoch: int, order: str = "cyclic", seed: int = 0) -> None:
        self.set_view(StoredViews(self.store, order, seed).view(epoch))

    def __len__(self) -> int:
        return int(self.store.num_samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        info = self.dataset.info
        image = self.dataset.image(int(i))
        x = render([image], self.params[i : i + 1], self.recipe, info.mean, info.std)[0]
        return x, int(self.labels[i]), torch.from_numpy(self.soft[i].astype(np.float32))
