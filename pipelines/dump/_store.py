"""Where a dump writes and what it records: the store's metadata and chunking, refusing taken
outputs, resuming its own store, cleaning leftovers.

Split out of :mod:`sortkd_cache.pipelines.dump`, which re-exports the public names.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sortkd_cache import __version__
from sortkd_cache.augment import CURRENT_VERSION, VERSIONS
from sortkd_cache.datasets import parse_dataset_spec
from sortkd_cache.errors import ConfigError, StoreError, StoreExistsError
from sortkd_cache.pipelines.common.helpers import clean_partial_files, utc_now
from sortkd_cache.pipelines.common.preprocess import recorded_preprocess
from sortkd_cache.sparse import quant_spec_for, sampled_spec_for, sparse_spec_for
from sortkd_cache.store import (
    CacheStore,
    DatasetRecord,
    StoreMeta,
    TeacherRecord,
    choose_chunk_samples,
    create_store,
    layout_of,
    open_store,
    parse_location,
)

if TYPE_CHECKING:
    from sortkd_cache.models import TeacherPreprocess
    from sortkd_cache.pipelines.dump._config import DumpConfig

__all__ = [
    "IDENTITY_FIELDS",
    "check_out_free",
    "check_resumable",
    "resumed_recipe_version",
    "chunk_samples_for",
    "meta_for",
    "open_or_create",
]

IDENTITY_FIELDS = (
    "num_samples",
    "num_views",
    "num_classes",
    "chunk_samples",
    "dtype",
    "seed",
    "sparse",
)
_ATTRS_KEY = "sortkd_cache"
_LOCK_PREFIX = ".sortkd-lock"


def _topk(meta: StoreMeta) -> str:
    return layout_of(meta).describe()


def check_resumable(where: str, old: StoreMeta, meta: StoreMeta) -> None:
    if old.sparse != meta.sparse:
        raise StoreError(
            f"cannot resume '{where}': it was dumped {_topk(old)} "
            f"({old.sparse and old.sparse.get('temperatures')}) but this run asks {_topk(meta)} "
            f"({meta.sparse and meta.sparse.get('temperatures')})"
        )
    for name in IDENTITY_FIELDS:
        if getattr(old, name) != getattr(meta, name):
            raise StoreError(
                f"cannot resume '{where}': {name} is {getattr(old, name)!r} in the store "
                f"but {getattr(meta, name)!r} now"
            )
    checks = {
        "dataset fingerprint": (old.dataset.fingerprint, meta.dataset.fingerprint),
        "teacher": (old.teacher.arch, meta.teacher.arch),
        "teacher sha256": (old.teacher.sha256, meta.teacher.sha256),
        "teacher precision": (old.teacher.precision, meta.teacher.precision),
        "teacher preprocessing": (_prep_of(old), _prep_of(meta)),
        "augment": (old.augment, meta.augment),
    }
    for name, (a, b) in checks.items():
        if a != b:
            raise StoreError(f"cannot resume '{where}': {name} differs ({a!r} vs {b!r})")


def _prep_of(meta: StoreMeta) -> dict[str, Any]:
    """The teacher's preprocessing as recorded (None: the dataset's normalisation), less
    where its fields came from."""
    d = recorded_preprocess(meta).to_dict()
    return {k: d[k] for k in ("mean", "std", "input_size", "interpolation")}


def _occupied(path: Path) -> bool:
    """Whether a directory holds anything but a writer lock and half-written files."""
    return path.is_dir() and any(_occupied_entry(c) for c in path.iterdir())


def _interrupted_creation(path: Path, cfg: DumpConfig, meta: StoreMeta) -> bool:
    """On --resume: whether the store at ``path`` was killed before any unit could be marked
    done. A dump creates in order: the root group, its attributes, labels, aug_params,
    logits/raw, progress/raw; progress markers exist only after all of them. Raises when
    ``path`` holds something else than a store of this dump (or a newer schema)."""
    try:
        doc = json.loads((path / "zarr.json").read_text())
        record = doc["attributes"][_ATTRS_KEY]
    except (OSError, ValueError, KeyError, TypeError):
        record = None
    if not isinstance(record, dict):
        if any(c.name != "zarr.json" for c in path.iterdir() if _occupied_entry(c)):
            raise StoreError(f"cannot resume '{cfg.out}': it is not a sortkd-cache store")
        (path / "zarr.json").unlink(missing_ok=True)  # killed before its attributes
        return True
    check_resumable(cfg.out, StoreMeta.from_dict(record), meta)  # newer schema: refused here
    needed = ["labels", "aug_params", "progress/raw", *layout_of(meta).required_arrays("raw")]
    return not all((path / p / "zarr.json").is_file() for p in needed)


def resumed_recipe_version(cfg: DumpConfig) -> int:
    """The augmentation recipe version of the store ``--resume`` continues (stores made
    before recipes had versions: 1), so that its remaining views are made as its first
    were; the current version where no record is readable yet."""
    try:
        doc = json.loads((Path(cfg.out) / "zarr.json").read_text())
        version = doc["attributes"][_ATTRS_KEY]["augment"].get("version", 1)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return CURRENT_VERSION
    return version if version in VERSIONS else CURRENT_VERSION


def _occupied_entry(c: Path) -> bool:
    return not (c.name.startswith(_LOCK_PREFIX) or c.name.endswith(".partial"))


def check_out_free(cfg: DumpConfig) -> None:
    """Fail fast, before loading data and teacher, when --out is taken (no --overwrite or
    --resume)."""
    path = Path(parse_location(cfg.out).path)
    if path.exists() and not path.is_dir():
        raise StoreExistsError(
            f"--out '{cfg.out}' is a file, not a store directory; dump never replaces it "
            "(not with --overwrite or --resume either): choose another path"
        )
    taken = path.exists() and (not path.is_dir() or _occupied(path))
    if taken and not (cfg.overwrite or cfg.resume):
        raise StoreExistsError(f"'{cfg.out}' already exists; pass --overwrite to replace it")


def open_or_create(cfg: DumpConfig, meta: StoreMeta, labels: np.ndarray) -> CacheStore:
    """The store to dump into: resumed, or created (replacing only with --overwrite).

    Half-written ``*.partial`` files of a killed writer are deleted once the directory is
    known to be this dump's store; call it holding the store's writer lock."""
    path = Path(parse_location(cfg.out).path)
    overwrite = cfg.overwrite
    if cfg.resume and _occupied(path):
        interrupted = _interrupted_creation(path, cfg, meta)  # raises unless it is ours
        clean_partial_files(path)
        if not interrupted:
            store = open_store(cfg.out, mode="r+")
            check_resumable(cfg.out, store.meta, meta)
            if not store.meta.complete:
                _check_batch_size(store, cfg)
                _check_decoder(store, cfg)
            return store
        overwrite = (path / "zarr.json").is_file()  # our own half-created store: replace it
    elif not _occupied(path):
        clean_partial_files(path)  # nothing but a lock and half-written files: start afresh
    store = create_store(cfg.out, meta, labels, overwrite=overwrite)
    attrs = {"batch_size": cfg.batch_size, "decoder": cfg.decoder}
    store.create_kind("raw", cfg.dtype, overwrite=True, attrs=attrs, fidelity=True)
    return store


def _check_batch_size(store: CacheStore, cfg: DumpConfig) -> None:
    recorded = store.kind_attrs("raw").get("batch_size")
    if recorded is not None and recorded != cfg.batch_size:
        raise ConfigError(
            f"cannot resume '{cfg.out}' with --batch-size {cfg.batch_size}: it was started with "
            f"--batch-size {recorded} (logits depend on it); pass --batch-size {recorded}"
        )


def _check_decoder(store: CacheStore, cfg: DumpConfig) -> None:
    recorded = store.kind_attrs("raw").get("decoder", "pil")
    if recorded != cfg.decoder:
        raise ConfigError(
            f"cannot resume '{cfg.out}' with --decoder {cfg.decoder}: it was started with "
            f"--decoder {recorded} (the pixels depend on it); pass --decoder {recorded}"
        )


def chunk_samples_for(cfg: DumpConfig, ds: Any) -> int:
    """Samples per block (the store's chunk)."""
    itemsize = np.dtype(cfg.dtype).itemsize
    chunk = cfg.chunk_samples or choose_chunk_samples(len(ds), ds.info.num_classes, itemsize)
    return min(chunk, len(ds))


def meta_for(
    cfg: DumpConfig,
    ds: Any,
    recipe: Any,
    teacher_sha: str | None,
    prep: TeacherPreprocess | None = None,
) -> StoreMeta:
    """The store metadata of a dump of ``ds`` (fingerprint included) under ``cfg``, its
    teacher's inputs made with ``prep`` (None: the dataset's normalisation)."""
    info = ds.info
    meta = StoreMeta(
        num_samples=len(ds),
        num_views=cfg.views,
        num_classes=info.num_classes,
        chunk_samples=chunk_samples_for(cfg, ds),
        dtype=cfg.dtype,
        seed=cfg.seed,
        dataset=DatasetRecord(
            name=info.name,
            spec=info.spec,
            split=info.split,
            fingerprint=ds.fingerprint(),
            num_samples=len(ds),
            num_classes=info.num_classes,
            channels=info.channels,
            image_size=info.image_size,
            mean=tuple(info.mean),
            std=tuple(info.std),
            location=parse_dataset_spec(cfg.dataset).location,
        ),
        teacher=TeacherRecord(
            arch=cfg.teacher,
            sha256=teacher_sha,
            init=cfg.teacher_init,
            checkpoint=Path(cfg.teacher_ckpt).name if cfg.teacher_ckpt else None,
            precision=cfg.precision,
            preprocess=None if prep is None else prep.to_dict(),
            path=str(Path(cfg.teacher_ckpt).resolve()) if cfg.teacher_ckpt else None,
        ),
        augment=recipe.to_dict(),
        tool_version=__version__,
        created=utc_now(),
        store_id=uuid.uuid4().hex,
    )
    if cfg.sample is not None:
        t0, c = cfg.proposal_temperature, info.num_classes
        sampled = sampled_spec_for(cfg.sample, c, cfg.dtype, t0, cfg.seed, cfg.sample_head)
        return meta.with_sparse(sampled)
    if cfg.quantize is not None:
        return meta.with_sparse(quant_spec_for(cfg.quantize, info.num_classes, cfg.dtype))
    if cfg.topk is None:
        return meta
    spec = sparse_spec_for(cfg.topk, info.num_classes, cfg.dtype, cfg.topk_temperatures)
    return meta.with_sparse(spec)
