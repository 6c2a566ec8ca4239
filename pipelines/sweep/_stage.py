"""`sortkd-cache sweep`: many students from one pass over the cache per epoch.

A KD study is a grid (students x losses x logits kinds x seeds). ``train`` pays for its own
pass over the data per run: decoding and replaying every view, reading its soft labels,
preparing evaluation, starting a process. The sweep pays once for the whole grid: one process
opens the store and the data, prepares the test split's evaluation views once, and each epoch
makes every batch once (its replayed images, and its soft labels once per logits kind read);
then every member takes its own step on it: its own loss, logits kind, initialisation seed,
model, optimizer and lr schedule (the training engine, :mod:`sortkd_cache.training`: one
after another, or with ``--stack on`` stacked per architecture with ``torch.func``;
``--stack auto`` stacks nothing until a GPU run shows a gain).

Each member is an ordinary train run (:class:`~sortkd_cache.pipelines.train._run.MemberRun`,
the same loop as ``train``: :class:`~sortkd_cache.pipelines.train._session.Session`) writing
``DIR/<member>/`` exactly as ``train`` does; its ``config.json`` replays it alone with
``train --config``. All members share one data seed (``data_seed``), so the batches of a
member are those of its solo run: unstacked, a member is bit-identical to its solo run.

A member whose loss diverges takes no step from the diverging one on (on every rank), is
marked failed in DIR/summary.json at the end of that epoch; the others go on. The summary
comes from memory. ``--resume`` continues every member from its own last checkpoint (a
member that finished an epoch more than another before a kill sits that epoch out), so a
resumed sweep ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from sortkd_cache.pipelines.common.helpers import dataset_folder, progress_bar
from sortkd_cache.pipelines.common.rundir import writer_locks
from sortkd_cache.pipelines.report import report_members
from sortkd_cache.pipelines.sweep._dir import (
    SweepDir,
)
from sortkd_cache.pipelines.sweep._grid import SweepConfig, grid
from sortkd_cache.pipelines.train import Session, current_world

if TYPE_CHECKING:
    from sortkd_cache.pipelines.train import TrainResult
    from sortkd_cache.world import World

__all__ = ["Sweep", "SweepConfig", "SweepResult", "grid", "sweep"]

#: what the sweep's summary keeps of each member's
_SUMMARY_KEYS = ("final_test_top1", "best_test_top1", "student", "loss", "logits", "epochs")


@dataclass
class SweepResult:
    out: str
    seconds: float
    stacked: bool
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, TrainResult] = field(default_factory=dict)
    #: the sweep's report (report.json's data), once every member finished or failed
    report: dict[str, Any] | None = None
    table: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": self.out,
            "seconds": self.seconds,
            "stacked": self.stacked,
            "members": self.members,
            "results": self.report,
        }


class Sweep:
    """One sweep in steps: :meth:`setup` (everything validated and built before any file is
    written), then per epoch the session's epoch, then :meth:`finish`."""

    def __init__(self, cfg: SweepConfig, world: World | None = None) -> None:
        self.cfg = cfg
        self.world = world if world is not None else current_world(cfg.members[0].cfg)
        self.rank0 = self.world.is_main
        runs = [(m.name, m.cfg) for m in cfg.members]
        self.session = Session(runs, self.world, stack=cfg.stack == "on")

    def setup(self) -> None:
        self.session.setup()
        first = self.cfg.members[0].cfg
        self.dir = SweepDir(self.cfg.out)
        if self.rank0:  # everything is validated and built: only now are directories touched
            inputs = [
                ("--cache", first.cache),
                ("--data-root", first.data_root),
                ("--dataset folder", dataset_folder(first.dataset)),
            ]
            self.dir.prepare(
                self.cfg.to_dict(),
                resume=self.cfg.resume,
                overwrite=self.cfg.overwrite,
                inputs=inputs,
            )
        if self.world.distributed:
            torch.distributed.barrier()
        self.session.open()

    def run(self) -> SweepResult:
        """setup, then every epoch of every member, then each member's finish and the summary."""
        self.setup()
        session = self.session
        t_run = time.perf_counter()
        batches = session.batches
        total = (session.end - session.start) * len(batches) * batches.local_batch
        bar = progress_bar(total, "sweep", "img", self.cfg.progress and self.rank0)
        try:
            for epoch in range(session.start, session.end):
                session.train_epoch(epoch, bar)
        finally:
            bar.close()
            session.close()
        return self.finish(time.perf_counter() - t_run)

    def finish(self, seconds: float) -> SweepResult:
        """Each member's finish; the sweep's summary (from memory) and report."""
        session = self.session
        result = SweepResult(self.cfg.out, seconds, bool(session.groups))
        for run in session.runs:
            info: dict[str, Any] = {"run_dir": run.cfg.out}
            if run.done:
                info["status"] = "finished"
            elif run.failed is not None:
                info.update(status="failed", error=run.failed, epochs=len(run.rows))
            else:
                r = run.finish(seconds, session.end)
                result.results[run.name] = r
                info.update(status="finished" if r.finished else "stopped", epochs=r.epochs)
            if info["status"] == "finished":
                summary = run.summary()
                info.update({k: summary[k] for k in _SUMMARY_KEYS})
            result.members[run.name] = info
        if self.rank0 and all(i["status"] != "stopped" for i in result.members.values()):
            members = [(r.cfg.out, None, result.members[r.name].get("error")) for r in session.runs]
            result.report, result.table = report_members(self.dir.path, members)
            self.dir.write_summary(result.to_dict())
        return result


def sweep(cfg: SweepConfig, world: World | None = None) -> SweepResult:
    """Run (or resume) a sweep; see the module docstring. ``world``: the run context (as
    ``train``'s; by default the process group's, or this single process)."""
    with writer_locks():  # the sweep directory's writer lock, released when the sweep ends
        return Sweep(cfg, world).run()
