"""Which stored view an epoch trains on, its augmentation parameters, and the dataset behind
a store (fingerprint-checked)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

import numpy as np

from sortkd_cache.augment import normalize, replay, sample_params
from sortkd_cache.datasets import load_dataset, parse_dataset_spec
from sortkd_cache.errors import ConfigError, DatasetError, FingerprintMismatchError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import torch

    from sortkd_cache.augment import AugmentRecipe
    from sortkd_cache.datasets import ImageDataset
    from sortkd_cache.store import CacheStore

__all__ = [
    "FreshViews",
    "StoredViews",
    "Views",
    "check_fingerprint",
    "load_store_dataset",
    "render",
    "store_data_spec",
    "view_for_epoch",
]


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


class Views(Protocol):
    """Which view an epoch trains on, and that view's augmentation parameters."""

    def view(self, epoch: int) -> int: ...

    def params(self, epoch: int, view: int) -> np.ndarray: ...


class StoredViews:
    """The views a store recorded: :func:`view_for_epoch` and the recorded parameters."""

    def __init__(self, store: CacheStore, order: str = "cyclic", seed: int = 0) -> None:
        self.store, self.order, self.seed = store, order, seed
        self.view(0)  # refuse an unknown order now

    def view(self, epoch: int) -> int:
        return view_for_epoch(epoch, self.store.num_views, self.order, self.seed)

    def params(self, epoch: int, view: int) -> np.ndarray:
        recorded: np.ndarray = self.store.params(view)
        return recorded


class FreshViews:
    """Without a store: view index = epoch, parameters drawn from (seed, sample, view)."""

    def __init__(self, recipe: AugmentRecipe, seed: int, data: ImageDataset) -> None:
        self.recipe, self.seed, self.data = recipe, seed, data

    def view(self, epoch: int) -> int:
        return epoch

    def params(self, epoch: int, view: int) -> np.ndarray:
        idx = np.arange(len(self.data), dtype=np.int64)
        return sample_params(self.recipe, self.seed, idx, view, self.data.image_sizes())


def render(
    images: torch.Tensor | Sequence[torch.Tensor],
    params: np.ndarray | torch.Tensor,
    recipe: AugmentRecipe,
    mean: Sequence[float],
    std: Sequence[float],
) -> torch.Tensor:
    """Replay recorded parameters onto uint8 images and normalise: float32 [B, C, h, w]."""
    return normalize(replay(images, params, recipe), mean, std)


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
    """The dataset split a store was made from (``spec`` overrides; an image folder is
    found as :func:`store_data_spec` says)."""
    ds = load_dataset(store_data_spec(store, spec), split, data_root=data_root)
    if check and split == store.meta.dataset.split:
        check_fingerprint(store, ds)
    return ds


def store_data_spec(store: CacheStore, spec: str | None = None) -> str:
    """The SPEC that loads a store's data: ``spec`` when given (the user's copy), else the
    recorded one. An image folder is looked up where the store recorded it (its absolute
    path), then by its folder name in the working directory (stores that recorded no path);
    a folder found at neither is one line (exit 2) saying how to give it."""
    record = store.meta.dataset
    if spec is not None:
        return spec
    parsed = parse_dataset_spec(record.spec)
    if parsed.location is None:
        return record.spec
    places = [p for p in (record.location, parsed.args[0]) if p is not None]
    for place in places:
        if os.path.isdir(place):
            return f"imagefolder:{place}"
    raise DatasetError(
        f"store '{store.url}' was made from the image folder {places[0]!r}, which is not "
        "there; pass your copy with --dataset imagefolder:PATH"
    )
