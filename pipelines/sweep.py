"""`sortkd-cache sweep`: many students from one pass over the cache per epoch.

A KD study is a grid (students x losses x logits kinds x seeds). ``train`` pays for its own
pass over the data per run: decoding and replaying every view, reading its soft labels,
preparing evaluation, starting a process. The sweep pays once for the whole grid: one process
opens the store and the data, prepares the test split's evaluation views once, and each epoch
makes every batch once (its replayed images, and its soft labels once per logits kind read);
then every member takes its own step on it: its own loss, logits kind, initialisation seed,
model, optimizer and lr schedule (:mod:`~sortkd_cache.pipelines._sweep_stack`: one after
another, or stacked per architecture with ``torch.func``).

Each member is an ordinary train run (:class:`~sortkd_cache.pipelines._sweep_member.MemberRun`)
writing ``DIR/<member>/`` exactly as ``train`` does; its ``config.json`` replays it alone with
``train --config``. All members share one data seed (``data_seed``), so the batches of a
member are those of its solo run: unstacked, a member is bit-identical to its solo run.

A member whose loss diverges is stopped and marked failed in DIR/summary.json; the others go
on. ``--resume`` continues every member from its own last checkpoint (a member that finished
an epoch more than another before a kill sits that epoch out), so a resumed sweep ends
bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from sortkd_cache.errors import ConfigError
from sortkd_cache.pipelines._common import dataset_folder, progress_bar, resolve_device
from sortkd_cache.pipelines._eval import EvalViews
from sortkd_cache.pipelines._rundir import writer_locks
from sortkd_cache.pipelines._sweep_dir import SweepDir, read_sweep
from sortkd_cache.pipelines._sweep_grid import SweepConfig, grid
from sortkd_cache.pipelines._sweep_member import MemberRun
from sortkd_cache.pipelines._sweep_stack import plan_units, stacking_on
from sortkd_cache.pipelines._train_data import soft_labels_for
from sortkd_cache.pipelines._train_setup import Setup, prepare, prepare_like
from sortkd_cache.pipelines.report import report_members
from sortkd_cache.pipelines.train import new_sums

if TYPE_CHECKING:
    from sortkd_cache.data import EpochBatches, SoftLabels
    from sortkd_cache.pipelines.train import TrainResult
    from sortkd_cache.world import World

__all__ = ["Sweep", "SweepConfig", "SweepResult", "describe_sweep", "grid", "sweep"]


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
    written), then per epoch :meth:`train_epoch`, then :meth:`finish`."""

    def __init__(self, cfg: SweepConfig, world: World | None = None) -> None:
        self.cfg = cfg
        self.members = [MemberRun(spec, world) for spec in cfg.members]
        self.world = self.members[0].world
        self.rank0 = self.world.is_main
        self.sources: dict[Any, SoftLabels] = {}

    def setup(self) -> None:
        first = self.cfg.members[0].cfg
        self.device = resolve_device(first.device)
        base = prepare(first, self.world)
        setups = [prepare_like(base, m.cfg) for m in self.members]
        reader = _one_order(self.members, setups)
        self.eval_views: EvalViews | None = None
        if self.rank0:
            workers = max(1, first.workers)
            self.eval_views = EvalViews(
                base.test, base.recipe, self.device, first.eval_batch_size, workers
            )
        for m, s in zip(self.members, setups, strict=True):
            m.attach(s, self.device, self.eval_views, None)
            if m.key is not None and m.key not in self.sources:
                source = soft_labels_for(s, self.device, True)
                if source is not None:
                    self.sources[m.key] = source
            m.soft = self.sources.get(m.key)
        self.batches: EpochBatches = reader.batches(self.device, None)
        for m in self.members:
            m.batches = self.batches
        self.stack = stacking_on(self.cfg.stack, self.device)
        self.end = first.epochs if first.stop_after is None else min(first.epochs, first.stop_after)
        self._open_dirs(first)

    def _open_dirs(self, first: Any) -> None:
        """Everything is validated and built: only now are the directories touched."""
        self.dir = SweepDir(self.cfg.out)
        if self.rank0:
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
        for m in self.members:
            if not m.done:
                m.open_run_dir()
                m.resume()
                m.ddp = m.s.wrap_ddp(m.model, self.device)

    def train_epoch(self, epoch: int, bar: Any) -> None:
        """Every active member trains epoch ``epoch`` on one pass over its batches."""
        t0 = time.perf_counter()
        active = [m for m in self.members if m.active(epoch)]
        if not active:
            return
        view = self.batches.view(epoch)
        order = self.batches.local_order(epoch)
        ahead = self.batches.view(epoch + 1) if epoch + 1 < self.end else None
        for source in self.sources.values():
            source.begin_epoch(view, order, ahead)
        units = plan_units(active, self.stack)
        for m in active:
            m.reference = None  # the divergence guard's, taken on this epoch's first batch
        sums = {m.name: _new_sums() for m in active}
        for batch in self.batches.epoch(epoch, last=self.end - 1):
            rows = {key: source.rows(batch) for key, source in self.sources.items()}
            for unit in units:
                unit.step(batch, rows, epoch, sums)
            bar.update(int(batch.y.shape[0]) * self.world.size)
        for unit in units:
            unit.end_epoch()
        # each member's row holds its share of the pass, so the members' seconds add up to it
        seconds = (time.perf_counter() - t0) / len(active)
        for m in active:
            if m.failed is None:
                m.rows.append(m.end_epoch_row(epoch, sums[m.name], seconds))
                m.checkpoint(epoch)

    def run(self) -> SweepResult:
        """setup, then every epoch of every member, then each member's finish and the summary."""
        self.setup()
        t_run = time.perf_counter()
        todo = [m for m in self.members if not m.done]
        start = min((m.start_epoch for m in todo), default=self.end)
        total = (self.end - start) * len(self.batches) * self.batches.local_batch
        bar = progress_bar(total, "sweep", "img", self.cfg.progress and self.rank0)
        try:
            for epoch in range(start, self.end):
                self.train_epoch(epoch, bar)
        finally:
            bar.close()
            self.close()
        return self.finish(time.perf_counter() - t_run)

    def close(self) -> None:
        self.batches.close()
        for source in self.sources.values():
            source.close()
        if self.eval_views is not None:
            self.eval_views.close()

    def finish(self, seconds: float) -> SweepResult:
        result = SweepResult(self.cfg.out, seconds, self.stack)
        for m in self.members:
            info: dict[str, Any] = {"run_dir": m.cfg.out}
            if m.done:
                info["status"] = "finished"
            elif m.failed is not None:
                info.update(status="failed", error=m.failed, epochs=len(m.rows))
            else:
                r = m.finish(seconds)
                result.results[m.name] = r
                info.update(status="finished" if r.finished else "stopped", epochs=r.epochs)
            info.update(_summary_of(m))
            result.members[m.name] = info
        if self.rank0 and all(i["status"] != "stopped" for i in result.members.values()):
            members = [(m.cfg.out, None, result.members[m.name].get("error")) for m in self.members]
            result.report, result.table = report_members(self.dir.path, members)
            self.dir.write_summary(result.to_dict())
        return result


def _summary_of(m: MemberRun) -> dict[str, Any]:
    path = Path(m.cfg.out) / "summary.json"
    if not path.is_file():
        return {}
    s = json.loads(path.read_text())
    keep = ("final_test_top1", "best_test_top1", "student", "loss", "logits")
    return {k: s.get(k) for k in keep}


def _new_sums() -> dict[str, float]:
    return new_sums()


def _one_order(members: list[MemberRun], setups: list[Setup]) -> Setup:
    """The setup whose batches serve every member: all members must see one data order (a
    streamed plan orders samples chunk by chunk; a member reading no soft labels would not)."""
    streamed = [s.plan.mode == "stream" for s in setups]
    if any(streamed) and not all(streamed):
        odd = next(m for m, st in zip(members, streamed, strict=True) if not st)
        raise ConfigError(
            f"member '{odd.name}': reads no soft labels, so its data order is not the streamed "
            "order of the other members (--soft-labels stream); sweep it separately or use "
            "--soft-labels view"
        )
    return setups[streamed.index(True)] if any(streamed) else setups[0]


def describe_sweep(path: str) -> dict[str, Any]:
    """A sweep directory's members: each one's status (finished, failed, running or not
    started: from its run directory and the sweep's summary) and final test top-1."""
    root = Path(path)
    grid_data = read_sweep(root)
    if grid_data is None:
        raise ConfigError(f"'{path}' is not a sweep directory (no sweep.json)")
    summary = {}
    if (root / "summary.json").is_file():
        summary = json.loads((root / "summary.json").read_text()).get("members", {})
    members: dict[str, dict[str, Any]] = {}
    for entry in grid_data["members"]:
        name = str(entry.get("name"))
        run = root / name
        info: dict[str, Any] = dict(summary.get(name, {}))
        if "status" not in info:
            done = (run / "summary.json").is_file()
            info["status"] = "finished" if done else "started" if run.is_dir() else "waiting"
        if info["status"] == "finished" and "final_test_top1" not in info:
            info["final_test_top1"] = json.loads((run / "summary.json").read_text()).get(
                "final_test_top1"
            )
        members[name] = info
    return {"sweep": str(root), "stack": grid_data.get("stack"), "members": members}


def sweep(cfg: SweepConfig, world: World | None = None) -> SweepResult:
    """Run (or resume) a sweep; see the module docstring. ``world``: the run context (as
    ``train``'s; by default the process group's, or this single process)."""
    with writer_locks():  # the sweep directory's writer lock, released when the sweep ends
        return Sweep(cfg, world).run()
