"""``verify --recompute N``: recompute N stored sample-views with the store's teacher.

The N sample-views are drawn with a seed, spread over views and chunks (the (chunk, view)
units in a seeded order, one sample of each in turn; every sample-view when N covers them).
Each is replayed from its recorded augmentation parameters, preprocessed as the store records
(:func:`~sortkd_cache.pipelines.common.preprocess.recorded_preprocess`), run through the teacher
named in the store (its recorded architecture and weights: a checkpoint given here, the
pretrained weights from the local cache, or the seeded random initialisation) at the recorded
precision, and compared with the stored raw logits: every logit of a dense row, the kept
entries of a sparse one. A difference counts relative to the row's scale ``max(1, max |z|)``;
the tolerance follows the stored dtype and the recorded precision (:func:`tolerance`).

Before anything is computed, weights whose sha256 differs from the store's record and data
whose fingerprint differs are refused (one line, exit 2).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sortkd_cache import check_fingerprint
from sortkd_cache.augment import AugmentRecipe, replay
from sortkd_cache.checkpoint import file_sha256
from sortkd_cache.data import store_data_spec
from sortkd_cache.datasets import load_dataset
from sortkd_cache.errors import ConfigError, StoreError
from sortkd_cache.pipelines.common.helpers import build_teacher, forward_context, resolve_device
from sortkd_cache.pipelines.common.preprocess import recorded_preprocess
from sortkd_cache.store import open_store

if TYPE_CHECKING:
    from sortkd_cache.store import CacheStore

__all__ = [
    "Recompute",
    "RecomputeConfig",
    "RecomputeReport",
    "format_recompute",
    "recorded_checkpoint",
    "tolerance",
]

_MAX_SHOWN = 10


@dataclass(frozen=True)
class RecomputeConfig:
    store: str
    samples: int  # N sample-views
    teacher_ckpt: str | None = None  # the store's checkpoint (init=checkpoint stores)
    data_root: str | None = None
    seed: int = 0  # which sample-views
    device: str = "auto"  # as dump and train: a GPU where there is one
    batch_size: int = 64
    storage_options: dict[str, Any] | None = None
    dataset: str | None = None  # the user's copy of the data (default: where the store says)


@dataclass
class RecomputeReport:
    store: str
    checked: int
    tolerance: float
    max_diff: float  # the largest |stored - recomputed| / row scale
    max_abs_diff: float
    differing: list[dict[str, Any]] = field(default_factory=list)  # {sample, view, diff}
    #: the largest per-row allowance for the layout's own rounding (quantized rows: half a
    #: step), subtracted before the differences above; 0 for layouts that keep exact values
    rounding: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.differing

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


def tolerance(dtype: str, precision: str) -> float:
    """The largest difference (relative to the row's scale) a recompute accepts: float16
    storage rounds to 2^-11 relative, fp32 forwards of other batch compositions differ by
    ~1e-6, autocast forwards by the autocast type's rounding through the network."""
    stored = 2e-3 if dtype == "float16" else 1e-4
    forward = {"fp32": 0.0, "fp16": 1e-2, "bf16": 5e-2}.get(precision, 5e-2)
    return max(stored, forward)


def _pick(store: CacheStore, n: int, seed: int) -> list[tuple[int, int]]:
    """``n`` (sample, view) pairs, seeded, spread over (chunk, view) units, sorted."""
    total = store.num_samples * store.num_views
    if n >= total:
        return [(i, v) for v in range(store.num_views) for i in range(store.num_samples)]
    rng = np.random.default_rng(seed)
    units = [(b, v) for b in range(store.num_blocks) for v in range(store.num_views)]
    order = rng.permutation(len(units))
    picked: set[tuple[int, int]] = set()
    k = 0
    while len(picked) < n:
        block, view = units[order[k % len(units)]]
        start, stop = store.block_bounds(block)
        picked.add((int(rng.integers(start, stop)), view))
        k += 1
    return sorted(picked, key=lambda p: (p[1], p[0]))


class Recompute:
    """Set up (store, data, teacher: each checked) by the constructor; :meth:`run` compares."""

    def __init__(self, cfg: RecomputeConfig) -> None:
        if cfg.samples < 1:
            raise ConfigError(f"--recompute {cfg.samples} must be >= 1")
        self.cfg = cfg
        self.store = open_store(cfg.store, "r", storage_options=cfg.storage_options)
        if not self.store.kind_complete("raw"):
            raise StoreError(f"store '{self.store.url}' has no complete raw logits to recompute")
        self.device = _device(cfg.device)
        self.model = self._teacher()
        self.ds = self._dataset()

    def _teacher(self) -> torch.nn.Module:
        t, meta, ckpt = self.store.meta.teacher, self.store.meta, self.cfg.teacher_ckpt
        if ckpt is not None and t.init != "checkpoint":
            raise ConfigError(
                f"--teacher-ckpt {ckpt}: the store's teacher {t.arch} was not loaded from a "
                f"checkpoint (--teacher-init {t.init}); recompute without --teacher-ckpt"
            )
        if ckpt is not None:
            _check_sha(ckpt, file_sha256(ckpt), t.sha256)
        elif t.init == "checkpoint":
            ckpt = recorded_checkpoint(self.store)
        info = meta.dataset
        model, sha = build_teacher(
            t.arch, meta.num_classes, info.channels, ckpt=ckpt, init=t.init,
            seed=meta.seed, device=self.device,
        )  # fmt: skip
        if ckpt is None and t.sha256 is not None:
            _check_sha(f"the pretrained weights of {t.arch}", sha, t.sha256)
        return model

    def _dataset(self) -> Any:
        split = self.store.meta.dataset.split
        spec = store_data_spec(self.store, self.cfg.dataset)
        ds = load_dataset(spec, split, data_root=self.cfg.data_root)
        check_fingerprint(self.store, ds)
        return ds

    def run(self) -> RecomputeReport:
        """Recompute the picked sample-views and compare them with the stored rows."""
        meta = self.store.meta
        tol = tolerance(meta.dtype, meta.teacher.precision)
        report = RecomputeReport(self.store.url, 0, tol, 0.0, 0.0)
        pairs = _pick(self.store, self.cfg.samples, self.cfg.seed)
        for view in sorted({v for _, v in pairs}):
            samples = np.array([i for i, v in pairs if v == view], dtype=np.int64)
            for a in range(0, len(samples), self.cfg.batch_size):
                part = samples[a : a + self.cfg.batch_size]
                self._compare(report, part, view, self._forward(part, view))
        report.differing.sort(key=lambda d: -d["diff"])
        return report

    def _forward(self, samples: np.ndarray, view: int) -> np.ndarray:
        meta = self.store.meta
        params = self.store.params(view)[samples]
        views = replay(self.ds.images(samples), params, AugmentRecipe.from_dict(meta.augment))
        x = recorded_preprocess(meta).apply(views).to(self.device)
        with torch.inference_mode(), forward_context(meta.teacher.precision, self.device):
            return self.model(x).float().cpu().numpy()  # type: ignore[no-any-return]

    def _compare(
        self, report: RecomputeReport, samples: np.ndarray, view: int, fresh: np.ndarray
    ) -> None:
        stored, ids, slack = _stored(self.store, samples, view)
        if ids is not None:
            fresh = np.take_along_axis(fresh, ids, axis=1)
        scale = np.maximum(1.0, np.abs(fresh).max(axis=1))
        error = np.abs(stored.astype(np.float64) - fresh).max(axis=1)
        absolute = np.maximum(error - slack, 0.0)  # beyond the layout's own rounding
        report.rounding = max(report.rounding, float(slack.max(initial=0.0)))
        absolute = np.where(np.isnan(absolute), np.inf, absolute)
        rel = absolute / scale
        report.checked += len(samples)
        report.max_diff = max(report.max_diff, float(rel.max(initial=0.0)))
        report.max_abs_diff = max(report.max_abs_diff, float(absolute.max(initial=0.0)))
        for i in np.flatnonzero(rel > report.tolerance):
            report.differing.append(
                {"sample": int(samples[i]), "view": view, "diff": float(rel[i])}
            )


def _stored(
    store: CacheStore, samples: np.ndarray, view: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The stored rows of ``samples`` (sorted) in ``view``: dense values, or a sparse store's
    kept values with their class ids; and per row the layout's own rounding (quantized rows:
    half a step), which a recomputed row may differ by."""
    blocks: dict[int, list[int]] = {}
    for s in samples.tolist():
        blocks.setdefault(s // store.chunk_samples, []).append(s)
    values, ids, slack = [], [], []
    for block, members in blocks.items():
        start, stop = store.block_bounds(block)
        rows = np.asarray(members) - start
        chunk = store.kind_array("raw")[start:stop, view]
        kept, kept_ids = store.layout.kept(chunk)
        values.append(kept[rows])
        slack.append(store.layout.read_error(chunk)[rows])
        if kept_ids is not None:
            ids.append(kept_ids[rows])
    found = np.concatenate(values), (np.concatenate(ids) if ids else None)
    return (*found, np.concatenate(slack))


def recorded_checkpoint(store: CacheStore) -> str:
    """The weights file the store records (its absolute path; for stores that recorded only
    the name, that name in the working directory, then beside the store) when it still has
    the recorded sha256; otherwise one line (exit 2) asking for ``--teacher-ckpt``."""
    t = store.meta.teacher
    places = [t.path] if t.path is not None else []
    if t.checkpoint is not None:
        places.append(t.checkpoint)
        if store.location.is_local:
            places.append(os.path.join(os.path.dirname(store.location.path), t.checkpoint))
    changed = []
    for place in places:
        if os.path.isfile(place):
            if file_sha256(place) == t.sha256:
                return place
            changed.append(place)
    why = f"; {changed[0]} has other weights now" if changed else ""
    raise ConfigError(
        f"the store's teacher {t.arch} was loaded from {t.path or t.checkpoint or 'a checkpoint'} "
        f"(sha256 {t.sha256}), not found{why}; pass it with --teacher-ckpt"
    )


def _check_sha(what: str, sha: str | None, recorded: str | None) -> None:
    if recorded is not None and sha != recorded:
        raise StoreError(
            f"{what} has sha256 {sha}, but the store's teacher has {recorded}; "
            "recompute with the store's own weights"
        )


def _device(device: str) -> torch.device:
    return resolve_device(device)


def format_recompute(report: RecomputeReport) -> str:
    """The human-readable result: the maximum difference, or the rows that differ."""
    head = (
        f"recompute  {report.checked} sample-views of {report.store}: max difference "
        f"{report.max_diff:.3g} of the row scale (abs {report.max_abs_diff:.3g}), "
        f"tolerance {report.tolerance:g}"
    )
    if report.rounding > 0:
        head += f" (beyond the store's own rounding, up to {report.rounding:.3g} per row)"
    if report.ok:
        return f"{head}: OK"
    lines = [f"{head}: {len(report.differing)} DIFFER"]
    for d in report.differing[:_MAX_SHOWN]:
        lines.append(f"  sample {d['sample']} view {d['view']}: difference {d['diff']:.3g}")
    if len(report.differing) > _MAX_SHOWN:
        lines.append(f"  ... and {len(report.differing) - _MAX_SHOWN} more (--json lists all)")
    return "\n".join(lines)
