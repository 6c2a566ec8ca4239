"""Everything a training run resolves before its first step: data, store, views, ranks.

:func:`prepare` opens the store and the data and checks they belong together (read only:
nothing is written). :meth:`Setup.batches` builds the run's
:class:`~sortkd_cache.data.EpochBatches`, the library's data path; :meth:`Setup.provenance`
names the cache a student was trained from.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from sortkd_cache.augment import AugmentRecipe, get_recipe
from sortkd_cache.data import (
    EpochBatches,
    FreshViews,
    StoredViews,
    StreamPlan,
    load_store_dataset,
    plan_soft_labels,
    store_data_spec,
)
from sortkd_cache.datasets import load_dataset
from sortkd_cache.errors import ConfigError, StoreError
from sortkd_cache.sparse import (
    DEFAULT_PROPOSAL,
    SAMPLED_TAILS,
    TAILS,
    check_draws,
    check_head,
    sampled_spec_for,
    sparse_spec_for,
)
from sortkd_cache.store import open_store, quick_check
from sortkd_cache.world import World

if TYPE_CHECKING:
    from sortkd_cache.augment import AugmentRecipe
    from sortkd_cache.data import SoftLabels, Views
    from sortkd_cache.datasets import ImageDataset
    from sortkd_cache.pipelines.train._config import TrainConfig
    from sortkd_cache.sparse import SparseSpec
    from sortkd_cache.store import CacheStore

__all__ = ["Setup", "prepare", "prepare_like"]


@dataclass
class Setup:
    cfg: TrainConfig
    train: ImageDataset
    test: ImageDataset
    store: CacheStore | None
    recipe: AugmentRecipe
    num_classes: int
    teacher_seed: int
    #: this process's place in the run (rank, world size, device)
    world: World = field(default_factory=World)
    #: whole-view or streamed soft labels (and the streamed epoch order)
    plan: StreamPlan = field(default_factory=lambda: StreamPlan("view"))
    #: the sparse teacher's format (a sparse store's, or ``--topk`` truncating dense rows or
    #: an online teacher), None for a dense teacher or none; and the loss's tail handling
    sparse: SparseSpec | None = None
    tail: str | None = None

    def views(self) -> Views:
        """The store's recorded views, or fresh augmentation per epoch without a store."""
        if self.store is not None:
            return StoredViews(self.store, self.cfg.views_order, self.cfg.order_seed)
        return FreshViews(self.recipe, self.cfg.order_seed, self.train)

    def batches(self, device: torch.device, soft: SoftLabels | None) -> EpochBatches:
        """The run's batches: the library's data path with this run's options."""
        cfg = self.cfg
        return EpochBatches(
            self.train,
            self.recipe,
            self.views(),
            soft,
            batch_size=cfg.batch_size,
            seed=cfg.order_seed,
            device=device,
            path=cfg.data_path,
            workers=cfg.workers,
            rank=self.world.rank,
            world=self.world.size,
            order=self.plan.order if self.plan.layout is not None else None,
        )

    def reduce(self, values: dict[str, float], device: torch.device) -> dict[str, float]:
        """Sum of every value over the ranks (the values themselves when single-process)."""
        if not self.world.distributed:
            return values
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
        if not self.world.distributed:
            return model
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
            "world_size": self.world.size,
            **self.plan.describe(),
            "topk": self.sparse.k if self.sparse is not None else None,
            "sample": self.cfg.sample,
            "quantize": self.cfg.quantize,
            **_sampled_record(self.cfg),
            "sparse_truncation": _truncation(self),
            "sparse_tail": self.tail,
        }

    def provenance(self) -> dict[str, Any] | None:
        """Which cache the student learns from (None without one): the store's id (fixed at
        dump time, kept by copies), the teacher's weights sha256, the dataset fingerprint, and
        the logits kind with its creation record. Traces a result to its cache even after the
        store was moved or copied."""
        store = self.store
        if store is None:
            return None
        meta, cfg = store.meta, self.cfg
        reads = cfg.online_teacher is None and cfg.loss_config().needs_teacher
        kind = cfg.logits if reads else None
        return {
            "store_id": meta.store_id,
            "store_url": store.url,
            "store_created": meta.created,
            "teacher": {"arch": meta.teacher.arch, "sha256": meta.teacher.sha256},
            "dataset": {"spec": meta.dataset.spec, "fingerprint": meta.dataset.fingerprint},
            "logits": kind,
            "logits_record": store.kind_attrs(kind) if kind is not None else None,
        }


def _truncation(s: Setup) -> str | None:
    """Where the sparse teacher's rows are truncated to the top K (None: not sparse)."""
    if s.sparse is None:
        return None
    if s.cfg.online_teacher is not None:
        return "online teacher, per batch"
    if s.store is not None and not s.store.layout.topk_per_batch:
        return "in the store"
    return "dense store rows, per batch"


def _sparse_teacher(
    cfg: TrainConfig, store: CacheStore | None, num_classes: int
) -> tuple[SparseSpec | None, str | None]:
    """(the run's sparse teacher format, its tail handling); refuses ``--topk`` that differs
    from a sparse store's K or does not fit C, and ``--sparse-tail`` without a sparse teacher.
    ``--topk K`` on dense rows uses ``copy --topk K``'s format: the store's dtype (float32
    without a store) and the default recorded temperatures."""
    # the store's own top-K rows (refusing another K), None where its rows are dense
    spec = store.layout.stored_topk(cfg.topk, str(cfg.cache)) if store is not None else None
    if store is not None and cfg.loss_config().needs_teacher:
        store.layout.check_loss(cfg.loss)  # a loss the store's rows cannot serve: refused
    _check_sample(cfg, store)
    _check_quantize(cfg, store)
    if spec is None and cfg.topk is not None:
        dtype = store.meta.dtype if store is not None else "float32"
        spec = sparse_spec_for(cfg.topk, num_classes, dtype, None)
    if not cfg.loss_config().needs_teacher:  # TrainConfig refuses --topk/--sparse-tail here
        return None, None
    return spec, _tail(cfg, store, spec)


def _tail(cfg: TrainConfig, store: CacheStore | None, spec: SparseSpec | None) -> str | None:
    """The loss's handling of the classes a teacher row does not name: ``--sparse-tail`` where
    the rows take it (top-K: uniform | bucket; sampled: student | counts), else the rows'
    default; None for dense rows (``--sparse-tail`` refused there)."""
    if cfg.sample is not None:
        tails: tuple[str, ...] = SAMPLED_TAILS
    elif spec is not None:
        tails = TAILS
    else:
        tails = store.layout.tails if store is not None else ()
    if cfg.sparse_tail is None or cfg.sparse_tail in tails:
        return (cfg.sparse_tail or tails[0]) if tails else None
    if not tails:
        raise ConfigError(
            f"--sparse-tail {cfg.sparse_tail} applies to a sparse teacher (a top-K or sampled "
            "store, --topk K or --sample S); this run's teacher rows name every class (dense "
            "or quantized)"
        )
    kind = "sampled" if tails == SAMPLED_TAILS else "top-K"
    raise ConfigError(
        f"--sparse-tail {cfg.sparse_tail} does not apply to {kind} teacher rows; they take "
        + " or ".join(tails)
    )


def _check_quantize(cfg: TrainConfig, store: CacheStore | None) -> None:
    """``--quantize B`` (its range and ``--topk``/``--sample`` checked by TrainConfig): on a
    dense store's rows, not with an online teacher."""
    if cfg.quantize is None:
        return
    if store is not None and not store.layout.topk_per_batch:
        raise ConfigError(
            f"--quantize {cfg.quantize} quantizes a dense store's rows; '{cfg.cache}' is "
            f"already {store.layout.word} "
            f"({store.layout.describe()}): leave --quantize out"
        )
    if cfg.online_teacher is not None or store is None:
        raise ConfigError(
            f"--quantize {cfg.quantize} quantizes a dense store's rows batch by batch; this "
            "run has " + ("an online teacher" if cfg.online_teacher is not None else "no store")
        )


def _sampled_record(cfg: TrainConfig) -> dict[str, Any]:
    """What ``--sample S`` on a dense store draws with: the proposal temperature (the
    default, as ``copy --sample`` without ``--proposal-temperature``) and the exact head."""
    if cfg.sample is None:
        return {}
    return {"sample_proposal_temperature": DEFAULT_PROPOSAL, "sample_head": cfg.sample_head or 0}


def _check_sample(cfg: TrainConfig, store: CacheStore | None) -> None:
    """``--sample S``: S in the count dtype's range, on a dense store's rows, not with
    ``--topk`` nor an online teacher, and a loss sampled rows serve."""
    if cfg.sample is None:
        return
    check_draws(cfg.sample)
    if cfg.sample_head is not None:
        check_head(cfg.sample_head)
    if cfg.topk is not None:
        raise ConfigError("--sample and --topk exclude each other")
    if cfg.online_teacher is not None or store is None or not store.layout.topk_per_batch:
        raise ConfigError(
            f"--sample {cfg.sample} samples a dense store's rows batch by batch; this run has "
            + ("an online teacher" if cfg.online_teacher is not None else "no dense store")
        )
    meta = store.meta
    sampled_spec_for(cfg.sample, meta.num_classes, meta.dtype, None, 0, cfg.sample_head)
    if cfg.loss == "ctkd":
        raise ConfigError(
            "--loss ctkd cannot train from sampled rows: its learnt temperature has no "
            "recorded normaliser for the importance weights; use kd, dkd or lskd"
        )


def _check_ranks(cfg: TrainConfig, world: World) -> None:
    if cfg.batch_size % world.size or cfg.batch_size // world.size < 2:
        raise ConfigError(
            f"--batch-size {cfg.batch_size} must be a multiple of the {world.size} ranks "
            "with at least 2 samples per rank (it is the global batch)"
        )


def _open_cache(cfg: TrainConfig) -> CacheStore:
    if cfg.cache is None:  # the caller checks
        raise ConfigError("no --cache given")
    store = open_store(cfg.cache, "r", storage_options=cfg.storage_options)
    if not store.meta.complete:
        raise StoreError(f"store '{cfg.cache}' is incomplete (its dump did not finish)")
    reads = cfg.online_teacher is None and cfg.loss_config().needs_teacher
    if reads:
        store.kind_array(cfg.logits)
    quick_check(store, [cfg.logits] if reads else None)
    return store


def prepare(cfg: TrainConfig, world: World | None = None) -> Setup:
    """Open the store and data, and check they belong together, before any training.
    ``world``: the run context (a single process by default)."""
    world = world if world is not None else World(device=cfg.device)
    _check_ranks(cfg, world)
    store = None
    if cfg.cache is not None:
        store = _open_cache(cfg)
        train_ds = load_store_dataset(store, cfg.dataset, data_root=cfg.data_root)
        test_spec = store_data_spec(store, cfg.dataset)
        recipe = AugmentRecipe.from_dict(store.meta.augment)
        num_classes, teacher_seed = store.num_classes, store.meta.seed
    elif cfg.dataset is not None:
        train_ds = load_dataset(
            cfg.dataset, "train", data_root=cfg.data_root, download=cfg.download
        )
        test_spec = cfg.dataset
        recipe = get_recipe(cfg.augment or train_ds.info.default_augment)
        num_classes, teacher_seed = train_ds.info.num_classes, cfg.seed
    else:  # TrainConfig refuses this
        raise ConfigError("give --cache STORE (distillation) or --dataset SPEC (plain training)")
    if cfg.num_classes is not None and cfg.num_classes != num_classes:
        where = f"store '{cfg.cache}'" if store is not None else f"dataset '{cfg.dataset}'"
        raise ConfigError(
            f"{where} has {num_classes} classes but the student is built for "
            f"{cfg.num_classes} (--num-classes)"
        )
    sparse, tail = _sparse_teacher(cfg, store, num_classes)
    test_ds = load_dataset(test_spec, "test", data_root=cfg.data_root)
    plan = _soft_label_plan(cfg, store, world.size)
    return Setup(
        cfg, train_ds, test_ds, store, recipe, num_classes, teacher_seed, world, plan,
        sparse, tail,
    )  # fmt: skip


def prepare_like(base: Setup, cfg: TrainConfig) -> Setup:
    """The setup of another run on ``base``'s store and data (a sweep member): its own logits
    kind checked, its sparse teacher and soft-label plan; the datasets are ``base``'s."""
    store = base.store
    if store is not None and cfg.online_teacher is None and cfg.loss_config().needs_teacher:
        store.kind_array(cfg.logits)  # refuses a missing or incomplete kind
        quick_check(store, [cfg.logits])
    sparse, tail = _sparse_teacher(cfg, store, base.num_classes)
    plan = _soft_label_plan(cfg, store, base.world.size)
    return replace(base, cfg=cfg, plan=plan, sparse=sparse, tail=tail)


def _soft_label_plan(cfg: TrainConfig, store: CacheStore | None, world: int) -> StreamPlan:
    """``--soft-labels`` resolved (whole views or streamed); refused where nothing reads soft
    labels (no store, or a CE run without an online teacher)."""
    soft = store is not None and (cfg.online_teacher is not None or cfg.loss_config().needs_teacher)
    if not soft and cfg.soft_labels != "auto":
        why = "without --cache" if store is None else f"with --loss {cfg.loss}"
        raise ConfigError(f"--soft-labels {cfg.soft_labels} does nothing {why}: no soft labels")
    plan = StreamPlan("none")
    if soft:
        plan = plan_soft_labels(
            cfg.soft_labels,
            store,
            batch_size=cfg.batch_size,
            world=world,
            lanes=cfg.stream_lanes,
            window=cfg.stream_window if cfg.stream_window is not None else 2,
        )
    for key in ("stream_window", "stream_lanes"):
        if plan.mode != "stream" and getattr(cfg, key) is not None:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(
                f"{flag} applies to --soft-labels stream; this run's soft labels are {plan.mode!r}"
            )
    return plan
