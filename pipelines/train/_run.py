"""One student's run in the pipelines: its engine member and its run directory.

A :class:`MemberRun` pairs a library :class:`~sortkd_cache.training.Member` (built whole from
the run's :class:`~sortkd_cache.pipelines.train._config.TrainConfig`) with what the stage
owns: the run directory (config.json, metrics, checkpoint, weights, summary), ``--resume``
and ``--config`` replay checks, and the epoch's metrics row. ``train`` drives one of them and
``sweep`` many, through the same :class:`~sortkd_cache.pipelines.train._session.Session`.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from sortkd_cache.checkpoint import save_weights
from sortkd_cache.errors import ConfigError
from sortkd_cache.losses import check_divergence, divergence_message
from sortkd_cache.pipelines.common.helpers import dataset_folder
from sortkd_cache.pipelines.common.rundir import RunDir
from sortkd_cache.pipelines.train._config import resume_difference
from sortkd_cache.pipelines.train._tensorboard import TensorBoardLog
from sortkd_cache.training import Member, MemberSpec, build_optimizer, build_scheduler

if TYPE_CHECKING:
    from sortkd_cache.pipelines.train._config import TrainConfig
    from sortkd_cache.pipelines.train._setup import Setup
    from sortkd_cache.training import EpochStats, Failure

__all__ = ["Diverged", "MemberRun", "TrainResult", "member_spec", "source_key"]


class Diverged(ConfigError):
    """A training loss that diverged (not finite, or far over a uniform prediction's)."""


@dataclass
class TrainResult:
    run_dir: str
    final_test_top1: float
    best_test_top1: float
    epochs: int
    seconds: float
    finished: bool
    step_losses: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("step_losses")
        return d


def source_key(cfg: TrainConfig, s: Setup) -> Hashable | None:
    """Which soft labels a run reads: (kind, top-K of dense rows, (draws, head) of dense
    rows, bits of dense rows quantized), None for none."""
    if not cfg.loss_config().needs_teacher:
        return None
    dense_topk = s.store is not None and s.store.layout.topk_per_batch and s.sparse is not None
    sampled = (cfg.sample, cfg.sample_head or 0) if cfg.sample is not None else None
    topk = s.sparse.k if dense_topk and s.sparse is not None else None
    return cfg.logits, topk, sampled, cfg.quantize


def member_spec(name: str, cfg: TrainConfig, s: Setup) -> MemberSpec:
    """The engine's spec of a run: its optimizer and lr schedule (the registered ones that
    ``--optimizer`` and ``--schedule`` chose, with their options) and its precision."""
    optimizer, schedule = cfg.optimizer_config(), cfg.schedule_config()

    def make_optimizer(params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        return build_optimizer(optimizer, params, cfg.lr)

    def make_schedule(opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        return build_scheduler(schedule, opt, cfg.epochs)

    return MemberSpec(
        name, cfg.student, s.num_classes, s.train.info.channels, cfg.seed, cfg.loss_config(),
        make_optimizer, make_schedule, source_key(cfg, s), s.tail, cfg.precision_config(),
    )  # fmt: skip


class MemberRun:
    """A run: its member, its setup and its run directory (see the module docstring)."""

    def __init__(self, name: str, cfg: TrainConfig, s: Setup, device: torch.device) -> None:
        self.name, self.cfg, self.s = name, cfg, s
        self.member = Member(member_spec(name, cfg, s), device)
        self.rank0 = s.world.is_main
        self.run_dir = RunDir(cfg.out)
        self.rows: list[dict[str, Any]] = []
        self.step_losses: list[float] = []
        self.start_epoch = 0
        self.tb: TensorBoardLog | None = None  #: --log tensorboard's writer, once opened
        self.tb_steps = 0  #: step losses already handed to it
        #: finished before this process started (a resumed sweep): nothing to do
        self.done = cfg.resume and self.run_dir.finished()  # a damaged summary: unfinished

    @property
    def failed(self) -> str | None:
        return self.member.failed

    def active(self, epoch: int) -> bool:
        """Whether the run trains in epoch ``epoch``."""
        return not self.done and self.failed is None and self.start_epoch <= epoch

    # -- the run directory ------------------------------------------------------------------
    def open_run_dir(self) -> None:
        """Check a --resume or --config replay, then (rank 0) prepare the run directory and
        write config.json."""
        cfg = self.cfg
        if cfg.replay_of is not None:
            diff = _cache_difference(dict(cfg.replay_of), self.s.provenance())
            if diff is not None:
                raise ConfigError(
                    f"--config: the run was recorded on another cache than '{cfg.cache}' "
                    f"({diff}); give --cache explicitly to replay it on this one"
                )
        if cfg.resume:
            self._check_resume()
        if self.rank0:
            inputs = [
                ("--cache", cfg.cache),
                ("--teacher-ckpt", cfg.teacher_ckpt),
                ("--data-root", cfg.data_root),
                ("--dataset folder", dataset_folder(cfg.dataset)),
            ]
            self.run_dir.prepare(resume=cfg.resume, overwrite=cfg.overwrite, inputs=inputs)
            self.run_dir.write_config(
                {**cfg.to_dict(), "resolved": self.s.describe(), "provenance": self.s.provenance()}
            )

    def _check_resume(self) -> None:
        """Refuse a --resume whose configuration or cache differs from the stored run's."""
        run = self.run_dir
        if not run.checkpoint.exists() or not run.config.is_file():
            return
        try:
            stored = json.loads(run.config.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"--resume: cannot read '{run.config}': {exc}") from None
        stored = stored if isinstance(stored, dict) else {}
        diff = resume_difference(stored, self.cfg)
        if diff is None:
            diff = _cache_difference(stored.get("provenance"), self.s.provenance())
        if diff is None:
            diff = _tail_difference(stored.get("resolved"), self.s.tail)
        if diff is not None:
            raise ConfigError(
                f"--resume: the run in '{run.path}' was started with another configuration "
                f"({diff}); resume it unchanged or train into a new --out"
            )

    def resume(self) -> None:
        """Continue from the run directory's checkpoint (with --resume), else from epoch 0."""
        if self.done:
            self.rows = self.run_dir.read_metrics()
            return
        state = self.run_dir.load_checkpoint() if self.cfg.resume else None
        if state is None:
            return
        self.member.load_state_dict(state)
        self.start_epoch = int(state["epoch"])
        self.rows = self.run_dir.read_metrics()[: self.start_epoch]

    # -- an epoch's end -----------------------------------------------------------------------
    def failure(self, failure: Failure, epoch: int) -> str:
        """The one-line reason of a diverged epoch (0-based ``epoch``)."""
        lr = self.member.lr
        message = None
        if failure.local:
            message = check_divergence(failure.loss, failure.reference, epoch=epoch + 1, lr=lr)
        return message or divergence_message(
            "the loss on another rank failed the divergence check", epoch=epoch + 1, lr=lr
        )

    def row(self, epoch: int, st: EpochStats, extra: Mapping[str, Any]) -> dict[str, Any]:
        """The epoch's metrics row from its stats (``extra``: view, test top-1, seconds, and
        the soft labels' streaming figures)."""
        n = max(st.n, 1.0)
        row = {
            "epoch": epoch + 1,
            "view": extra["view"],
            "loss": st.loss / n,
            **{k: v / n for k, v in st.parts.items()},
            "train_top1": 100.0 * st.correct / n,
            "test_top1": extra["test_top1"],
            "lr": self.member.epoch_lr,  # the rate the epoch trained at
            "seconds": extra["seconds"],
        }
        if self.member.temperature is not None:
            row["temperature"] = self.member.temperature.temperature()
        return row | dict(extra.get("stream", {}))

    def checkpoint(self, epoch: int) -> None:
        """Metrics and the resumable state after epoch ``epoch`` (0-based), rank 0 only."""
        if not self.rank0:
            return
        self.run_dir.write_metrics(self.rows)
        self.run_dir.save_checkpoint({**self.member.state_dict(), "epoch": epoch + 1})
        self.log_epoch()

    def log_epoch(self) -> None:
        """--log tensorboard: the last metrics row and the step losses since the last call
        (host floats of the epoch's one read: no read is added to the step), after the
        checkpoint."""
        if self.cfg.log is None:
            return
        if self.tb is None:
            config = self.cfg.to_dict()
            self.tb = TensorBoardLog(
                self.run_dir.path, config, self.cfg.log_every, len(self.rows) - 1
            )
        self.tb.epoch(self.rows[-1], self.step_losses[self.tb_steps :])
        self.tb_steps = len(self.step_losses)

    def close(self) -> None:
        """Close the TensorBoard writer, if one was opened."""
        if self.tb is not None:
            self.tb.close()
            self.tb = None

    # -- the end --------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """The run's summary (summary.json's), from memory."""
        cfg, rows = self.cfg, self.rows
        return {
            "final_test_top1": rows[-1]["test_top1"] if rows else 0.0,
            "best_test_top1": max((r["test_top1"] for r in rows), default=0.0),
            "epochs": len(rows),
            "seconds": sum(r["seconds"] for r in rows),
            "student": cfg.student,
            "loss": cfg.loss,
            "loss_options": self.member.loss.options(),
            "logits": cfg.logits if self.s.store is not None else None,
            "cache": cfg.cache,
            "provenance": self.s.provenance(),
            "weights": self.run_dir.weights.name,
        }

    def finish(self, seconds: float, end_epoch: int) -> TrainResult:
        """Weights, curves and summary.json (the mark of a finished run) when finished."""
        cfg = self.cfg
        finished = end_epoch == cfg.epochs
        self.close()
        summary = self.summary()
        if self.rank0 and finished:
            save_weights(self.member.model, self.run_dir.weights)
            kind = summary["logits"]
            self.run_dir.plot(self.rows, f"{cfg.student} ({cfg.loss}, logits={kind or 'none'})")
            self.run_dir.write_summary(summary)
        return TrainResult(
            str(self.run_dir.path), summary["final_test_top1"], summary["best_test_top1"],
            len(self.rows), seconds, finished, self.step_losses,
        )  # fmt: skip


def _cache_difference(old: Any, new: dict[str, Any] | None) -> str | None:
    """The first provenance field (store id, teacher, data, logits kind) that changed."""
    if not isinstance(old, dict) or new is None:
        return None
    for key in ("store_id", "teacher", "dataset", "logits"):
        if old.get(key) != new.get(key):
            return f"cache {key} {json.dumps(old.get(key))} -> {json.dumps(new.get(key))}"
    created = [(r or {}).get("created") for r in (old.get("logits_record"), new["logits_record"])]
    if created[0] != created[1]:
        return f"cache logits made {json.dumps(created[0])} -> {json.dumps(created[1])}"
    return None


def _tail_difference(resolved: Any, tail: str | None) -> str | None:
    """The sparse tail handling a run used, if it differs from this one's (a run started with
    the default keeps it, should the default change)."""
    if not isinstance(resolved, dict) or "sparse_tail" not in resolved:
        return None  # a run recorded before the choice existed
    old = resolved["sparse_tail"]
    if old == tail:
        return None
    hint = f"; pass --sparse-tail {old}" if isinstance(old, str) else ""
    return f"sparse tail {old!r} -> {tail!r}{hint}"
