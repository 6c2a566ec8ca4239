"""The batches of an epoch: replayed views, labels and soft labels; the one training data path.

    import sortkd_cache as sk
    store = sk.open_store("digits.zarr")
    batches = sk.EpochBatches.from_store(store, kind="sort", batch_size=64, seed=0)
    for epoch in range(E):
        for b in batches.epoch(epoch):   # b.x images, b.y labels, b.soft teacher logits
            ...

``sortkd-cache train`` runs this same class (the stage only adds the model, the loss, the
optimizer, evaluation and checkpoints), so your loop sees exactly the stage's batches for the
same seed and epoch. Per epoch:

* the **view**: stored view ``epoch mod V`` (``views_order="shuffle"``: a seeded order per
  block of V epochs), or, without a store, fresh augmentation parameters per epoch;
* the **order**: a permutation drawn from (seed, epoch) only (or a given ordering, e.g. the
  chunk-local order of a streamed source), cut into batches; a last batch of one sample is
  dropped (it breaks BatchNorm). Under torch.distributed each rank takes its consecutive part
  of every global batch (:func:`shard_order`);
* the **images**: the view's recorded parameters replayed. ``path="device"`` keeps the whole
  uint8 split in device memory and replays there (no host round trip); ``"loader"`` replays in
  DataLoader workers (pinned memory, non-blocking copies) for data that does not fit; both give
  the same batches. ``"auto"`` picks device when the split fits;
* the **soft labels**: from a :class:`~sortkd_cache.data.SoftLabels` source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypedDict

import numpy as np
import torch

from sortkd_cache.augment import AugmentRecipe, normalize, replay
from sortkd_cache.choices import DATA_PATHS
from sortkd_cache.data._batch import Batch, SoftLabels
from sortkd_cache.data._order import epoch_order, shard_order
from sortkd_cache.data._sources import store_soft_labels
from sortkd_cache.data._views import StoredViews, Views, check_fingerprint, load_store_dataset
from sortkd_cache.errors import ConfigError

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from sortkd_cache.datasets import ImageDataset
    from sortkd_cache.store import CacheStore

__all__ = ["DATA_PATHS", "BatchOptions", "EpochBatches", "choose_path"]

#: ``(n, batch_size, seed, epoch) -> global sample order`` of an epoch.
OrderFn = Callable[[int, int, int, int], "torch.Tensor"]


def choose_path(ds: ImageDataset, device: torch.device, requested: str) -> str:
    """'device' when the split is in memory and fits comfortably, else 'loader'."""
    if requested not in DATA_PATHS:
        raise ConfigError(f"unknown --data-path '{requested}'; use auto, device or loader")
    if requested == "device" and ds.tensor is None:
        raise ConfigError("--data-path device needs an in-memory dataset (not imagefolder)")
    if requested != "auto":
        return requested
    if ds.tensor is None:
        return "loader"
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return "device" if ds.tensor.numel() < 0.3 * free else "loader"
    return "device"


def _batches_of(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    out = list(torch.split(order, batch_size))
    if len(out) > 1 and out[-1].numel() == 1:  # a batch of one breaks BatchNorm
        out.pop()
    return out


def _replay_dataset(
    ds: ImageDataset, params: np.ndarray, batches: list[torch.Tensor], recipe: AugmentRecipe
) -> torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]:
    """A map-style dataset: item i is (replayed uint8 views, indices) of batch i."""

    class _ReplayBatches(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
        def __len__(self) -> int:
            return len(batches)

        def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
            # A copy: sending a view of the epoch order from a worker moves the order's whole
            # storage to shared memory in that worker's queue thread, freeing the memory that
            # the next batch's ``idx`` (a numpy view) may already point to.
            idx = batches[i].clone()
            return replay(ds.images(idx.numpy()), params[idx.numpy()], recipe), idx

    return _ReplayBatches()


class BatchOptions(TypedDict, total=False):
    """The keyword options of :class:`EpochBatches` (what :meth:`EpochBatches.from_store`
    passes on)."""

    batch_size: int
    seed: int
    device: torch.device | str
    path: str
    workers: int
    rank: int
    world: int
    order: OrderFn | None


class EpochBatches:
    """The batches of any epoch (see the module docstring); iterate :meth:`epoch`.

    Args:
        data: the training split (its images and labels).
        recipe: the augmentation recipe the views were made with.
        views: which view an epoch uses and its parameters (:class:`StoredViews`,
            :class:`FreshViews`).
        soft: the soft-label source, or None (``Batch.soft`` is then None).
        batch_size: the global batch (split evenly over ``world`` ranks).
        seed: the order's seed. order: another ``(n, batch, seed, epoch) -> order``.
        device, path, workers: where batches are made (see the module docstring).
    """

    def __init__(
        self,
        data: ImageDataset,
        recipe: AugmentRecipe,
        views: Views,
        soft: SoftLabels | None = None,
        *,
        batch_size: int = 64,
        seed: int = 0,
        device: torch.device | str = "cpu",
        path: str = "auto",
        workers: int = 0,
        rank: int = 0,
        world: int = 1,
        order: OrderFn | None = None,
    ) -> None:
        if batch_size < 2 or batch_size // world < 1:
            raise ConfigError(f"batch_size must be >= 2 (and >= 1 per rank), got {batch_size}")
        self.data, self.recipe, self.views, self.soft = data, recipe, views, soft
        self.batch_size, self.seed, self.workers = batch_size, seed, workers
        self.rank, self.world = rank, world
        self.device = torch.device(device)
        self.path = choose_path(data, self.device, path)
        self._order = order
        self.labels = torch.as_tensor(np.array(data.labels, dtype=np.int64), device=self.device)
        self._images: torch.Tensor | None = None

    @classmethod
    def from_store(
        cls,
        store: CacheStore,
        kind: str | None = "sort",
        *,
        dataset: ImageDataset | None = None,
        data_root: str | None = None,
        views_order: str = "cyclic",
        **kw: Unpack[BatchOptions],
    ) -> EpochBatches:
        """Batches of a store's views with its ``kind`` soft labels (None: no soft labels);
        the store's dataset is loaded (``data_root``) or ``dataset`` is fingerprint-checked."""
        if dataset is None:
            dataset = load_store_dataset(store, data_root=data_root)
        else:
            check_fingerprint(store, dataset)
        device = kw.get("device", "cpu")
        soft = store_soft_labels(store, kind, device) if kind is not None else None
        recipe = AugmentRecipe.from_dict(store.meta.augment)
        seed = int(kw.get("seed", 0))
        return cls(dataset, recipe, StoredViews(store, views_order, seed), soft, **kw)

    @property
    def local_batch(self) -> int:
        """Samples per rank and step."""
        return self.batch_size // self.world

    def view(self, epoch: int) -> int:
        """The view epoch ``epoch`` (0-based) trains on."""
        return self.views.view(epoch)

    def local_order(self, epoch: int) -> torch.Tensor:
        """This rank's samples of epoch ``epoch``, in order."""
        n = len(self.data)
        if self._order is not None:
            order = self._order(n, self.batch_size, self.seed, epoch)
        else:
            order = epoch_order(n, self.seed, epoch)
        return shard_order(order, self.batch_size, self.rank, self.world)

    def __len__(self) -> int:
        """Steps per epoch (on this rank)."""
        return len(_batches_of(self.local_order(0), self.local_batch))

    def epoch(self, epoch: int, *, last: int | None = None) -> Iterator[Batch]:
        """The batches of epoch ``epoch`` (0-based); ``last`` is the last epoch that will be
        asked for (no soft labels are read ahead past it)."""
        view = self.view(epoch)
        order = self.local_order(epoch)
        if self.soft is not None:
            ahead = epoch + 1 if last is None or epoch + 1 <= last else None
            self.soft.begin_epoch(view, order, self.view(ahead) if ahead is not None else None)
        params = self.views.params(epoch, view)
        batches = _batches_of(order, self.local_batch)
        make = self._on_device if self.path == "device" else self._from_loader
        for x, idx in make(params, batches):
            batch = Batch(x, self.labels[idx], idx)
            if self.soft is not None:
                batch = batch._replace(soft=self.soft.rows(batch))
            yield batch

    def _on_device(
        self, params: np.ndarray, batches: list[torch.Tensor]
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = self.data.info
        if self._images is None:
            tensor = self.data.tensor
            if tensor is None:  # choose_path refuses this
                raise ConfigError("the device data path needs an in-memory dataset")
            self._images = tensor.to(self.device)
        p = torch.from_numpy(np.ascontiguousarray(params)).to(self.device)
        # the batches' indices on the host, read once an epoch: each batch's params are
        # checked there, and replayed from their device copy (no read back in the loop)
        order = torch.cat(batches).numpy() if batches else np.zeros(0, np.int64)
        start = 0
        for idx in batches:
            host = order[start : start + len(idx)]
            start += len(idx)
            i = idx.to(self.device)
            views = replay(self._images[i], params[host], self.recipe, on_device=p[i])
            yield normalize(views, info.mean, info.std), i

    def _from_loader(
        self, params: np.ndarray, batches: list[torch.Tensor]
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        loader = torch.utils.data.DataLoader(
            _replay_dataset(self.data, params, batches, self.recipe),
            batch_size=None,
            shuffle=False,
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            prefetch_factor=4 if self.workers > 0 else None,
        )
        info = self.data.info
        for u8, idx in loader:
            i = idx.to(self.device, non_blocking=True)
            x = u8.to(self.device, non_blocking=True)
            yield normalize(x, info.mean, info.std), i

    def close(self) -> None:
        """Release the soft-label source and the device copy of the images."""
        if self.soft is not None:
            self.soft.close()
        self._images = None
