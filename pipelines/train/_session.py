"""The one training loop of ``train`` and ``sweep``: runs on shared data, epoch by epoch.

A :class:`Session` is given the runs' configurations (one for ``train``, the grid for
``sweep``) and:

1. :meth:`~Session.setup` validates and builds everything before any file is written: the
   store and data (once), each run's :class:`~sortkd_cache.pipelines.train._run.MemberRun`
   (its engine member), one soft-label source per logits kind read, one set of batches, the
   test split's evaluation views (rank 0) and the stacked groups (``stack``; refused where a
   stacked member could not equal its solo run);
2. :meth:`~Session.open` prepares each run directory and resumes each run;
3. :meth:`~Session.train_epoch` trains every active run on one pass over the batches
   (:func:`sortkd_cache.training.train_epoch`), reads the epoch once
   (:func:`sortkd_cache.training.read_epoch`), marks diverged members failed, and writes each
   other run's metrics row and checkpoint.

The stages keep what is theirs: ``train`` raises on a divergence and returns one result;
``sweep`` writes its grid, summary and report.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

from sortkd_cache.data import stream_stats
from sortkd_cache.errors import ConfigError
from sortkd_cache.pipelines.common.helpers import resolve_device
from sortkd_cache.pipelines.train._data import soft_labels_for
from sortkd_cache.pipelines.train._eval import EvalViews
from sortkd_cache.pipelines.train._run import MemberRun
from sortkd_cache.pipelines.train._setup import Setup, prepare, prepare_like
from sortkd_cache.training import (
    Member,
    check_stackable,
    plan_units,
    read_epoch,
    stack_groups,
    train_epoch,
)

if TYPE_CHECKING:
    from sortkd_cache.data import EpochBatches, SoftLabels
    from sortkd_cache.pipelines.train._config import TrainConfig
    from sortkd_cache.world import World

__all__ = ["Session"]


class Session:
    """Runs trained together on one pass over the data (see the module docstring)."""

    def __init__(
        self, runs: Sequence[tuple[str, TrainConfig]], world: World, *, stack: bool = False
    ) -> None:
        if not runs:
            raise ConfigError("no runs to train")
        self.specs, self.world, self.stack = list(runs), world, stack
        self.rank0 = world.is_main
        first = self.specs[0][1]
        self.end = first.epochs if first.stop_after is None else min(first.epochs, first.stop_after)

    def setup(self) -> None:
        """Validate and build everything (nothing is written)."""
        first = self.specs[0][1]
        self.device = resolve_device(first.device)
        base = prepare(first, self.world)
        setups = [base] + [prepare_like(base, cfg) for _, cfg in self.specs[1:]]
        self.runs = [
            MemberRun(name, cfg, s, self.device)
            for (name, cfg), s in zip(self.specs, setups, strict=True)
        ]
        self.sources: dict[Hashable, SoftLabels] = {}
        for run in self.runs:
            key = run.member.spec.source
            if key is not None and key not in self.sources:
                source = soft_labels_for(run.s, self.device, True)
                if source is not None:
                    self.sources[key] = source
        reader = _one_order(self.runs)
        own = next(iter(self.sources.values()), None)
        self.batches: EpochBatches = reader.batches(self.device, own)
        self.eval_views: EvalViews | None = None
        if self.rank0:  # the test split's views, prepared once for every epoch's evaluation
            self.eval_views = EvalViews(
                base.test, base.recipe, self.device, first.eval_batch_size, max(1, first.workers)
            )
        todo = [r.member for r in self.runs if not r.done]
        self.groups = stack_groups(todo) if self.stack else []
        check_stackable([m for g in self.groups for m in g], self.world)

    def open(self) -> None:
        """Prepare each run directory (rank 0), resume each run, then set up its ranks."""
        stacked = {id(m) for g in self.groups for m in g}
        for run in self.runs:
            if run.done:
                run.resume()
                continue
            run.open_run_dir()
            run.resume()
            run.member.distribute(self.world, ddp=id(run.member) not in stacked)

    @property
    def start(self) -> int:
        """The first epoch any run still trains."""
        return min((r.start_epoch for r in self.runs if not r.done), default=self.end)

    def train_epoch(self, epoch: int, bar: Any) -> list[MemberRun]:
        """Every active run trains epoch ``epoch`` (0-based) on one pass; returns the runs
        whose member diverged in it (marked failed; no row, no checkpoint)."""
        t0 = time.perf_counter()
        active = [r for r in self.runs if r.active(epoch)]
        if not active:
            return []
        members: list[Member] = [r.member for r in active]
        units = plan_units(members, self.groups, self.world)
        size = self.world.size
        train_epoch(
            units, self.batches, self.sources, epoch, world=self.world, last=self.end - 1,
            on_batch=lambda b: bar.update(int(b.y.shape[0]) * size),
        )  # fmt: skip
        stats = read_epoch(members, self.world)
        # each run's row holds its share of the pass, so the runs' seconds add up to it
        seconds = (time.perf_counter() - t0) / len(active)
        failed = []
        for run in active:
            st = stats[run.name]
            if st.failure is not None:
                run.member.fail(run.failure(st.failure, epoch))
                failed.append(run)
                continue
            run.step_losses.extend(st.step_losses)
            extra = {
                "view": self.batches.view(epoch),
                "test_top1": self.evaluate(run) if self.rank0 else 0.0,
                "seconds": seconds,
                "stream": stream_stats(self.sources.get(run.member.spec.source), size),
            }
            run.rows.append(run.row(epoch, st, extra))
            run.checkpoint(epoch)
        return failed

    def evaluate(self, run: MemberRun) -> float:
        """Top-1 (%) of the run's student on the test split (rank 0, after setup)."""
        if self.eval_views is None:
            raise ConfigError("evaluate() runs on rank 0 after setup()")
        return self.eval_views.top1(run.member.model)

    def close(self) -> None:
        self.batches.close()  # closes the batches' own source
        for source in self.sources.values():
            if source is not self.batches.soft:
                source.close()
        if self.eval_views is not None:
            self.eval_views.close()
        for run in self.runs:
            run.close()


def _one_order(runs: Sequence[MemberRun]) -> Setup:
    """The setup whose batches serve every run: all must see one data order (a streamed plan
    orders samples chunk by chunk; a run reading no soft labels would not)."""
    streamed = [r.s.plan.mode == "stream" for r in runs]
    if any(streamed) and not all(streamed):
        odd = next(r for r, st in zip(runs, streamed, strict=True) if not st)
        raise ConfigError(
            f"member '{odd.name}': reads no soft labels, so its data order is not the streamed "
            "order of the other members (--soft-labels stream); sweep it separately or use "
            "--soft-labels view"
        )
    return runs[streamed.index(True)].s if any(streamed) else runs[0].s
