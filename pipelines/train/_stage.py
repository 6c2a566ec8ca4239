"""`sortkd-cache train`: students from the cache (or plain CE training without one).

With ``--cache`` each epoch e trains on stored view ``e mod V`` (``--views-order shuffle``:
a seeded order per block of V epochs). Training images are that view's recorded parameters
replayed, so the student sees exactly the image the teacher saw, and the soft labels are the
store's ``raw``/``sort``/``swap`` logits of that view. ``--online-teacher`` runs the same loop
with a teacher computing the logits of the same replayed batch (and the same sort/swap per
batch): it exists to prove equality and to measure the saving. Without a cache, ``--dataset``
with ``--loss ce`` trains a model with fresh augmentation each epoch (a teacher for ``dump``).
The test split is evaluated every epoch without augmentation; its views are prepared once per
run (:class:`~sortkd_cache.pipelines.train._eval.EvalViews`: on the device when they fit).
Every step's loss passes the divergence guard on the device
(:mod:`sortkd_cache.training`; the rule: :func:`~sortkd_cache.losses.check_divergence`): from
a NaN loss, or one over ten times the loss of a uniform prediction, the student takes no
further step, and at the end of that epoch (when the step's values are read, once an epoch)
the run stops with exit 2, naming the epoch and suggesting a lower learning rate.

The loop is the training engine's (:mod:`sortkd_cache.training`), run by the same
:class:`~sortkd_cache.pipelines.train._session.Session` as ``sweep``: ``train`` is a sweep of
one member. :class:`Trainer` is the stage in steps: :meth:`~Trainer.setup` (validate, open the
data, build the member and the batches, and only then touch the run directory and resume),
then :meth:`~Trainer.run`. Its batches are the library's
:class:`~sortkd_cache.data.EpochBatches`, the same a researcher's own loop iterates.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch.distributed as dist

from sortkd_cache.pipelines.common.distributed import is_distributed
from sortkd_cache.pipelines.common.helpers import progress_bar
from sortkd_cache.pipelines.common.rundir import writer_locks
from sortkd_cache.pipelines.train._config import TrainConfig
from sortkd_cache.pipelines.train._run import Diverged, MemberRun, TrainResult
from sortkd_cache.pipelines.train._session import Session
from sortkd_cache.world import World

if TYPE_CHECKING:
    from sortkd_cache.data import EpochBatches

__all__ = ["Diverged", "TrainConfig", "TrainResult", "Trainer", "current_world", "train"]


class Trainer:
    """One training run in steps (see the module docstring); :meth:`run` does them all."""

    def __init__(self, cfg: TrainConfig, world: World | None = None) -> None:
        self.cfg = cfg
        self.world = world if world is not None else current_world(cfg)
        self.session = Session([("run", cfg)], self.world)

    def setup(self) -> None:
        """Validate and build everything, then (rank 0) prepare the run directory and
        resume from it (with --resume)."""
        self.session.setup()
        self.session.open()

    @property
    def run_of(self) -> MemberRun:
        return self.session.runs[0]

    @property
    def batches(self) -> EpochBatches:
        return self.session.batches

    def run(self) -> TrainResult:
        """setup, then epoch by epoch: train, evaluate, checkpoint; then finish. A diverged
        loss stops the run (exit 2) at the end of its epoch."""
        self.setup()
        session, run = self.session, self.run_of
        t_run = time.perf_counter()
        total = (session.end - run.start_epoch) * len(run.s.train)
        bar = progress_bar(total, "train", "img", self.cfg.progress and self.world.is_main)
        try:
            for epoch in range(run.start_epoch, session.end):
                if session.train_epoch(epoch, bar):
                    raise Diverged(str(run.failed))
                row = run.rows[-1]
                bar.set_postfix(
                    epoch=epoch + 1, loss=f"{row['loss']:.3f}", test=f"{row['test_top1']:.1f}"
                )
        finally:
            bar.close()
            session.close()
        return run.finish(time.perf_counter() - t_run, session.end)


def current_world(cfg: TrainConfig) -> World:
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
