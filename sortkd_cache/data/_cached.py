"""Training from a cache in your own loop, one sample at a time: :class:`CachedViewDataset`.

    import sortkd_cache as sk
    store = sk.open_store("digits.zarr")
    ds = sk.CachedViewDataset(store, kind="sort")   # view 0
    x, y, soft = ds[0]                              # image, label, soft logits (float32 [C])
    ds.set_epoch(3)                                 # the view epoch 3 trains on

Item i is the augmented image the teacher saw for the current view (its recorded parameters
replayed), normalised, with the label and the soft logits (float32), for a ``DataLoader``
with your own sampler. It is a thin adapter over the path the ``train`` stage runs
(:class:`~sortkd_cache.data.EpochBatches`): the store's views (:class:`StoredViews`) and the
same soft-label source (:func:`~sortkd_cache.data.store_soft_labels`, so a sparse store's
rows are checked as they are read). From a sparse (top-K) store pass ``temperature=T``: the
soft logits are the rows rebuilt from the top K for KD at T (exact probabilities of the kept
classes and of the tail at a recorded temperature, the tail spread uniformly over the dropped
classes; see :mod:`sortkd_cache.sparse`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from sortkd_cache.augment import AugmentRecipe
from sortkd_cache.data._batch import Batch
from sortkd_cache.data._layouts import training_of
from sortkd_cache.data._sources import store_soft_labels
from sortkd_cache.data._views import StoredViews, check_fingerprint, load_store_dataset, render
from sortkd_cache.errors import ConfigError

if TYPE_CHECKING:
    from sortkd_cache.datasets import ImageDataset
    from sortkd_cache.store import CacheStore

__all__ = ["CachedViewDataset"]


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
        self.store, self.kind, self.temperature = store, kind, temperature
        self._source = store_soft_labels(store, kind)  # refuses a missing kind now
        self._training = training_of(store.layout)
        # sparse layouts: the dense rows rebuilt at ``temperature`` (refused without one)
        self.temperature = self._training.dataset_temperature(store, temperature)
        if dataset is None:
            dataset = load_store_dataset(store, data_root=data_root)
        else:
            check_fingerprint(store, dataset)
        self.dataset = dataset
        self.recipe = AugmentRecipe.from_dict(store.meta.augment)
        self.labels = store.labels
        self.views = StoredViews(store)
        self.view = -1
        self.set_view(view)

    def _view_rows(self, view: int) -> np.ndarray:
        """Every sample's soft logits of ``view`` ([N, C]: the kind's dtype, or float32 rows
        rebuilt from a sparse kind), from the source."""
        n = int(self.store.num_samples)
        idx = torch.arange(n, dtype=torch.int64)
        y = torch.from_numpy(np.asarray(self.labels, dtype=np.int64))
        self._source.begin_epoch(view, idx, None)
        rows = self._source.rows(Batch(torch.empty(0), y, idx))
        dense = self._training.dense_rows(rows, y, float(self.temperature or 0.0))
        out: np.ndarray = dense.cpu().numpy()
        return out

    def set_view(self, view: int) -> None:
        if not 0 <= view < self.store.num_views:
            raise ConfigError(f"view {view} outside [0, {self.store.num_views})")
        if view != self.view:
            self.view = view
            self.params = self.views.params(view, view)
            self.soft = self._view_rows(view)

    def set_epoch(self, epoch: int, order: str = "cyclic", seed: int = 0) -> None:
        self.set_view(StoredViews(self.store, order, seed).view(epoch))

    def __len__(self) -> int:
        return int(self.store.num_samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        info = self.dataset.info
        image = self.dataset.image(int(i))
        x = render([image], self.params[i : i + 1], self.recipe, info.mean, info.std)[0]
        return x, int(self.labels[i]), torch.from_numpy(self.soft[i].astype(np.float32))
