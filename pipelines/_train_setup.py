"""Everything a training run resolves before its first step: data, store, views, ranks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sortkd_cache.errors import ConfigError, StoreError

__all__ = ["Setup", "prepare"]


@dataclass
class Setup:
    cfg: Any
    train: Any
    test: Any
    store: Any | None
    recipe: Any
    num_classes: int
    teacher_seed: int
    rank: int = 0
    world: int = 1

    def view_for(self, epoch: int) -> int:
        """Stored view of an epoch; without a cache, a fresh view index per epoch."""
        from sortkd_cache.cached import view_for_epoch

        if self.store is None:
            return epoch
        return view_for_epoch(epoch, self.store.num_views, self.cfg.views_order, self.cfg.seed)

    def params_for(self, epoch: int, view: int) -> np.ndarray:
        """Augmentation parameters [N, 5] of the epoch: recorded (cache) or freshly drawn."""
        if self.store is not None:
            recorded: np.ndarray = self.store.params(view)
            return recorded
        from sortkd_cache.augment import sample_params

        idx = np.arange(len(self.train), dtype=np.int64)
        return sample_params(self.recipe, self.cfg.seed, idx, view, self.train.image_sizes())

    def local_batch(self, batch_size: int) -> int:
        """Samples per rank and step (the global batch split evenly over the ranks)."""
        return batch_size // self.world

    def shard(self, order: torch.Tensor, batch_size: int) -> torch.Tensor:
        """This rank's part of every global batch (the whole order when single-process).

        Global batch k of ``order`` is cut into ``world`` equal, consecutive parts; rank r
        takes part r. Batched by :meth:`local_batch`, every rank's k-th step then sees its part
        of the single-process run's k-th batch, so DDP's gradient average equals the
        single-process gradient. The last, shorter batch of an epoch is cut the same way into
        ``len // world`` samples per rank; its ``len % world`` leftover samples (fewer than the
        number of ranks) are skipped that epoch, so every rank takes the same number of steps.
        """
        if self.world == 1:
            return order
        b = batch_size // self.world
        full = (order.numel() // batch_size) * batch_size
        head = order[:full].view(-1, self.world, b)[:, self.rank, :].reshape(-1)
        tail = order[full:]
        t = tail.numel() // self.world
        if t == 0:
            return head
        return torch.cat([head, tail[: t * self.world].view(self.world, t)[self.rank]])

    def reduce(self, values: dict[str, float], device: torch.device) -> dict[str, float]:
        """Sum of every value over the ranks (the values themselves when single-process)."""
        if self.world == 1:
            return values
        import torch.distributed as dist

        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return dict(zip(keys, t.tolist(), strict=True))

    def wrap_ddp(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """DistributedDataParallel around ``model`` when there are several ranks.

        On CUDA, BatchNorm layers become SyncBatchNorm (statistics over the global batch, as
        single-process). On CPU (gloo) torch has no SyncBatchNorm, so each rank normalises
        with the statistics of its own part of the batch: students with BatchNorm then match
        a single-process run only approximately; students without it match to float
        rounding. The conversion is in place, so ``model`` keeps the same parameters and
        state-dict keys.
        """
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        if device.type == "cuda":
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[no-untyped-call]
            return DistributedDataParallel(model, device_ids=[device.index or 0])
        return DistributedDataParallel(model)

    def describe(self) -> dict[str, Any]:
        return {
            "num_classes": self.num_classes,
            "train_samples": len(self.train),
            "test_samples": len(self.test),
            "dataset": self.train.info.spec,
            "fingerprint": self.train.fingerprint(),
            "augment": self.recipe.to_dict(),
            "store_views": self.store.num_views if self.store is not None else None,
            "world_size": self.world,
        }


def prepare(cfg: Any) -> Setup:
    """Open the store and data, and check they belong together, before any training."""
    from sortkd_cache.augment import AugmentRecipe, get_recipe
    from sortkd_cache.cached import load_store_dataset
    from sortkd_cache.datasets import load_dataset
    from sortkd_cache.pipelines.distributed import is_distributed
    from sortkd_cache.store import open_store, quick_check

    rank, world = 0, 1
    if is_distributed():
        import torch.distributed as dist

        rank, world = dist.get_rank(), dist.get_world_size()
        if cfg.batch_size % world or cfg.batch_size // world < 2:
            raise ConfigError(
                f"--batch-size {cfg.batch_size} must be a multiple of the {world} ranks "
                "with at least 2 samples per rank (it is the global batch)"
            )
    store = None
    if cfg.cache is not None:
        store = open_store(cfg.cache, "r", storage_options=cfg.storage_options)
        if not store.meta.complete:
            raise StoreError(f"store '{cfg.cache}' is incomplete (its dump did not finish)")
        reads = cfg.online_teacher is None and cfg.loss_config().needs_teacher
        if reads:
            store.logits(cfg.logits)
        needs = [cfg.logits] if reads else None
        quick_check(store, needs)
        train_ds = load_store_dataset(store, cfg.dataset, data_root=cfg.data_root)
        test_spec = cfg.dataset or store.meta.dataset.spec
        recipe = AugmentRecipe.from_dict(store.meta.augment)
        num_classes = store.num_classes
        teacher_seed = store.meta.seed
    else:
        train_ds = load_dataset(
            cfg.dataset, "train", data_root=cfg.data_root, download=cfg.download
        )
        test_spec = cfg.dataset
        recipe = get_recipe(cfg.augment or train_ds.info.default_augment)
        num_classes = train_ds.info.num_classes
        teacher_seed = cfg.seed
    if cfg.num_classes is not None and cfg.num_classes != num_classes:
        where = f"store '{cfg.cache}'" if store is not None else f"dataset '{cfg.dataset}'"
        raise ConfigError(
            f"{where} has {num_classes} classes but the student is built for "
            f"{cfg.num_classes} (--num-classes)"
        )
    test_ds = load_dataset(test_spec, "test", data_root=cfg.data_root)
    return Setup(
        cfg=cfg,
        train=train_ds,
        test=test_ds,
        store=store,
        recipe=recipe,
        num_classes=num_classes,
        teacher_seed=teacher_seed,
        rank=rank,
        world=world,
    )
