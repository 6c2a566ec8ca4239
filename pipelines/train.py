"""`sortkd-cache train`: students from the cache (or plain CE training without one).

With ``--cache`` each epoch e trains on stored view ``e mod V`` (``--views-order shuffle``:
a seeded order per block of V epochs). Training images are that view's recorded parameters
replayed, so the student sees exactly the image the teacher saw, and the soft labels are the
store's ``raw``/``sort``/``swap`` logits of that view. ``--online-teacher`` runs the same loop
with a teacher computing the logits of the same replayed batch (and the same sort/swap per
batch): it exists to prove equality and to measure the saving. Without a cache, ``--dataset``
with ``--loss ce`` trains a model with fresh augmentation each epoch (a teacher for ``dump``).
The test split is evaluated every epoch without augmentation; its views are prepared once per
run (:class:`~sortkd_cache.pipelines._eval.EvalViews`: on the device when they fit).
Every step's loss passes the divergence guard
(:func:`~sortkd_cache.losses.check_divergence`) before the optimizer step: a NaN loss, or one
over ten times the loss of a uniform prediction, stops the run with exit 2 (it never trains
on), naming the epoch and suggesting a lower learning rate.

:class:`Trainer` is the stage in steps: :meth:`~Trainer.setup` (validate, open the data,
build the model, the optimizer and the batches, and only then touch the run directory),
:meth:`~Trainer.resume`, :meth:`~Trainer.train_epoch`, :meth:`~Trainer.evaluate`,
:meth:`~Trainer.checkpoint` and :meth:`~Trainer.finish`. Its batches are the library's
:class:`~sortkd_cache.data.EpochBatches`, the same a researcher's own loop iterates.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch
import torch.distributed as dist

from sortkd_cache.checkpoint import save_weights
from sortkd_cache.data import stream_stats
from sortkd_cache.errors import ConfigError
from sortkd_cache.losses import check_divergence, compute_loss
from sortkd_cache.models import create_model
from sortkd_cache.pipelines._common import dataset_folder, progress_bar, resolve_device
from sortkd_cache.pipelines._eval import EvalViews
from sortkd_cache.pipelines._rundir import RunDir, writer_locks
from sortkd_cache.pipelines._tensorboard import TensorBoardLog
from sortkd_cache.pipelines._train_config import TrainConfig, resume_difference
from sortkd_cache.pipelines._train_data import soft_labels_for
from sortkd_cache.pipelines._train_setup import Setup, prepare
from sortkd_cache.pipelines.distributed import is_distributed
from sortkd_cache.world import World

if TYPE_CHECKING:
    from sortkd_cache.data import Batch, EpochBatches, SoftLabels
    from sortkd_cache.losses import CTKDTemperature, Loss

__all__ = ["Diverged", "TrainConfig", "TrainResult", "Trainer", "add_step", "new_sums", "train"]


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


class Progress(Protocol):
    """The progress bar a trainer reports to (tqdm's, or a disabled one)."""

    def update(self, n: int) -> object: ...

    def set_postfix(self, **values: object) -> object: ...


class Trainer:
    """One training run in steps (see the module docstring); :meth:`run` does them all."""

    s: Setup
    loss: Loss
    model: torch.nn.Module
    ddp: torch.nn.Module
    temperature: CTKDTemperature | None
    opt: torch.optim.SGD
    sched: torch.optim.lr_scheduler.MultiStepLR
    batches: EpochBatches
    soft: SoftLabels | None
    run_dir: RunDir

    def __init__(self, cfg: TrainConfig, world: World | None = None) -> None:
        self.cfg = cfg
        self.world = world if world is not None else _current_world(cfg)
        self.rank0 = self.world.is_main
        self.rows: list[dict[str, Any]] = []
        self.step_losses: list[float] = []
        self.start_epoch = 0
        self.reference: float | None = None
        self.tb: TensorBoardLog | None = None  #: --log tensorboard's writer, once opened
        self.tb_steps = 0  #: step losses already handed to it

    @property
    def end_epoch(self) -> int:
        cfg = self.cfg
        return cfg.epochs if cfg.stop_after is None else min(cfg.epochs, cfg.stop_after)

    def setup(self) -> None:
        """Validate and build everything, then (rank 0) prepare the run directory."""
        cfg = self.cfg
        self.device = resolve_device(cfg.device)
        self.s = prepare(cfg, self.world)
        self.build()
        self.soft = soft_labels_for(self.s, self.device, self.loss.needs_teacher)
        self.batches = self.s.batches(self.device, self.soft)
        self.eval_views: EvalViews | None = None
        if self.rank0:  # the test split's views, prepared once for every epoch's evaluation
            workers = max(1, cfg.workers)
            self.eval_views = EvalViews(
                self.s.test, self.s.recipe, self.device, cfg.eval_batch_size, workers
            )
        # everything is validated and built: only now is the run directory touched
        self.open_run_dir()

    def build(self) -> None:
        """The loss, the model (initialised from ``seed``), the optimizer and its schedule."""
        cfg = self.cfg
        self.loss = cfg.loss_config()
        torch.manual_seed(cfg.seed)
        self.model = create_model(cfg.student, self.s.num_classes, self.s.train.info.channels)
        self.temperature = self.loss.make_temperature_module(self.device)
        self.model.to(self.device)
        params = list(self.model.parameters())
        if self.temperature is not None:
            params += list(self.temperature.parameters())
        self.opt = torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
        self.sched = torch.optim.lr_scheduler.MultiStepLR(
            self.opt, list(cfg.milestones), gamma=cfg.lr_decay
        )

    def open_run_dir(self) -> None:
        """Check a --resume, then (rank 0) prepare the run directory and write config.json."""
        cfg = self.cfg
        if cfg.replay_of is not None:
            self._check_replay(cfg.replay_of)
        self.run_dir = RunDir(cfg.out)
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
                {**cfg.to_dict(), "resolved": self.s.describe(), "provenance": self.provenance}
            )

    @property
    def provenance(self) -> dict[str, Any] | None:
        return self.s.provenance()

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
            diff = _cache_difference(stored.get("provenance"), self.provenance)
        if diff is None:
            diff = _tail_difference(stored.get("resolved"), self.s.tail)
        if diff is not None:
            raise ConfigError(
                f"--resume: the run in '{run.path}' was started with another configuration "
                f"({diff}); resume it unchanged or train into a new --out"
            )

    def _check_replay(self, recorded: Mapping[str, Any]) -> None:
        """Refuse a ``train --config`` replay on another cache than the recorded run's (the
        store now at the recorded path is another store), unless --cache was given."""
        diff = _cache_difference(dict(recorded), self.provenance)
        if diff is not None:
            raise ConfigError(
                f"--config: the run was recorded on another cache than '{self.cfg.cache}' "
                f"({diff}); give --cache explicitly to replay it on this one"
            )

    def resume(self) -> None:
        """Continue from the run directory's checkpoint (with --resume), else from epoch 0."""
        state = self.run_dir.load_checkpoint() if self.cfg.resume else None
        if state is None:
            return
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        if self.temperature is not None and "temperature" in state:
            self.temperature.load_state_dict(state["temperature"])
        self.start_epoch = int(state["epoch"])
        self.rows = self.run_dir.read_metrics()[: self.start_epoch]

    def loss_terms(
        self, out: torch.Tensor, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of logits ``out`` on ``batch`` at epoch ``epoch`` (0-based), with parts."""
        return compute_loss(
            self.loss, out, batch.soft, batch.y, epoch=epoch + 1,
            temperature_module=self.temperature, tail=self.s.tail,
        )  # fmt: skip

    def check_loss(self, value: float, out: torch.Tensor, batch: Batch, epoch: int) -> None:
        """The divergence guard, before the optimizer step: exit 2 on a NaN loss or one over
        the bound; the reference (all-zero logits) is taken on each epoch's first batch."""
        if self.reference is None:
            with torch.no_grad():
                self.reference = float(self.loss_terms(torch.zeros_like(out), batch, epoch)[0])
        lr = float(self.opt.param_groups[0]["lr"])
        problem = check_divergence(value, self.reference, epoch=epoch + 1, lr=lr)
        if problem is not None:
            raise Diverged(problem)

    def step(self, batch: Batch, epoch: int) -> tuple[float, dict[str, float], float]:
        """One optimizer step: (loss, its weighted parts, correct predictions)."""
        out = self.ddp(batch.x)
        loss, parts = self.loss_terms(out, batch, epoch)
        value = float(loss.detach())
        self.check_loss(value, out.detach(), batch, epoch)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        self.opt.step()
        return value, parts, float((out.argmax(1) == batch.y).sum())

    def train_epoch(self, epoch: int, bar: Progress) -> dict[str, Any]:
        """Train epoch ``epoch`` (0-based); its metrics row (test top-1 from rank 0)."""
        t0 = time.perf_counter()
        self.reference = None  # the divergence guard's, taken on this epoch's first batch
        sums = new_sums()
        for batch in self.batches.epoch(epoch, last=self.end_epoch - 1):
            add_step(sums, self.step(batch, epoch), batch)
            self.step_losses.append(sums["last"])
            bar.update(int(batch.y.shape[0]) * self.world.size)
        return self.end_epoch_row(epoch, sums, time.perf_counter() - t0)

    def end_epoch_row(self, epoch: int, sums: dict[str, float], seconds: float) -> dict[str, Any]:
        """Step the schedule; the epoch's metrics row from its step sums (see :func:`add_step`)."""
        self.sched.step()
        sums = {k: v for k, v in sums.items() if k != "last"}
        totals = self.s.reduce(sums, self.device)
        n = max(totals["n"], 1.0)
        row = {
            "epoch": epoch + 1,
            "view": self.batches.view(epoch),
            "loss": totals["loss"] / n,
            **{k[5:]: v / n for k, v in totals.items() if k.startswith("part_")},
            "train_top1": 100.0 * totals["correct"] / n,
            "test_top1": self.evaluate() if self.rank0 else 0.0,
            "lr": self.opt.param_groups[0]["lr"],
            "seconds": seconds,
        }
        if self.temperature is not None:
            row["temperature"] = self.temperature.temperature()
        return row | stream_stats(self.soft, self.world.size)

    def evaluate(self) -> float:
        """Top-1 (%) of the student on the test split (its views prepared once, in setup)."""
        if self.eval_views is None:
            raise ConfigError("evaluate() runs on rank 0 after setup()")
        return self.eval_views.top1(self.model)

    def checkpoint(self, epoch: int) -> None:
        """Metrics and the resumable state after epoch ``epoch`` (0-based), rank 0 only."""
        if not self.rank0:
            return
        self.run_dir.write_metrics(self.rows)
        state: dict[str, Any] = {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "epoch": epoch + 1,
        }
        if self.temperature is not None:
            state["temperature"] = self.temperature.state_dict()
        self.run_dir.save_checkpoint(state)
        self.log_epoch()

    def log_epoch(self) -> None:
        """--log tensorboard: the last metrics row and the step losses since the last call
        (already host floats: no read is added to the step), after the checkpoint."""
        if self.cfg.log is None:
            return
        if self.tb is None:
            config = self.cfg.to_dict()
            self.tb = TensorBoardLog(
                self.run_dir.path, config, self.cfg.log_every, len(self.rows) - 1
            )
        self.tb.epoch(self.rows[-1], self.step_losses[self.tb_steps :])
        self.tb_steps = len(self.step_losses)

    def finish(self, seconds: float) -> TrainResult:
        """Weights, curves and summary.json (the mark of a finished run) when finished."""
        cfg, rows = self.cfg, self.rows
        finished = self.end_epoch == cfg.epochs
        if self.tb is not None:
            self.tb.close()
        final = rows[-1]["test_top1"] if rows else 0.0
        best = max((r["test_top1"] for r in rows), default=0.0)
        if self.rank0 and finished:
            kind = cfg.logits if self.s.store is not None else None
            save_weights(self.model, self.run_dir.weights)
            self.run_dir.plot(rows, f"{cfg.student} ({cfg.loss}, logits={kind or 'none'})")
            summary = {
                "final_test_top1": final,
                "best_test_top1": best,
                "epochs": len(rows),
                "seconds": sum(r["seconds"] for r in rows),
                "student": cfg.student,
                "loss": cfg.loss,
                "loss_options": self.loss.options(),
                "logits": kind,
                "cache": cfg.cache,
                "provenance": self.provenance,
                "weights": self.run_dir.weights.name,
            }
            self.run_dir.write_summary(summary)
        return TrainResult(
            str(self.run_dir.path), final, best, len(rows), seconds, finished, self.step_losses
        )

    def run(self) -> TrainResult:
        """setup, resume, then epoch by epoch: train, evaluate, checkpoint; then finish."""
        self.setup()
        self.resume()
        self.ddp = self.s.wrap_ddp(self.model, self.device)
        t_run = time.perf_counter()
        total = (self.end_epoch - self.start_epoch) * len(self.s.train)
        bar = progress_bar(total, "train", "img", self.cfg.progress and self.rank0)
        self.model.train()
        try:
            for epoch in range(self.start_epoch, self.end_epoch):
                row = self.train_epoch(epoch, bar)
                self.rows.append(row)
                self.checkpoint(epoch)
                bar.set_postfix(
                    epoch=epoch + 1, loss=f"{row['loss']:.3f}", test=f"{row['test_top1']:.1f}"
                )
        finally:
            bar.close()
            self.batches.close()
            if self.eval_views is not None:
                self.eval_views.close()
        return self.finish(time.perf_counter() - t_run)


class Diverged(ConfigError):
    """A training loss that is not finite (NaN or infinite)."""


def new_sums() -> dict[str, float]:
    """Empty step sums of an epoch (see :func:`add_step`)."""
    return {"loss": 0.0, "correct": 0.0, "n": 0.0, "last": float("nan")}


def add_step(
    sums: dict[str, float], step: tuple[float, dict[str, float], float], batch: Batch
) -> None:
    """Add one step's (loss, parts, correct) to the epoch's sums; ``last``: its loss."""
    value, parts, correct = step
    b = float(batch.y.shape[0])
    sums["last"] = value
    sums["loss"] += value * b
    sums["correct"] += correct
    sums["n"] += b
    for k, v in parts.items():
        sums[f"part_{k}"] = sums.get(f"part_{k}", 0.0) + v * b


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


def _current_world(cfg: TrainConfig) -> World:
    """The run context when the caller gives none: the process group's, when one is set
    up (``torch.distributed``), else this single process on ``cfg.device``."""
    if not is_distributed():
        return World(device=cfg.device)
    env = World.from_env(cfg.device)
    return World(dist.get_rank(), dist.get_world_size(), env.local_rank, cfg.device)


def train(cfg: TrainConfig, world: World | None = None) -> TrainResult:
    """Run (or resume) one training run; see the module docstring. ``world``: the run
    context (rank, world size, device; see :class:`~sortkd_cache.world.World`), read by the
    CLI once; by default the current process group's, or a single process."""
    with writer_locks():  # the run directory's writer lock, released when the run ends
        return Trainer(cfg, world).run()
