"""One member of a sweep: a :class:`~sortkd_cache.pipelines.train.Trainer` on shared data.

A member is a train run whose setup (store, datasets, evaluation views, soft-label sources)
is the sweep's, shared with the other members, and whose loop is the sweep's: the sweep makes
each batch once and hands it to every member. Its model, optimizer, schedule, checkpoint and
run directory are its own, exactly as ``train`` makes them, so its files equal its solo run's.
Each member keeps its own torch random state (stepped members that use randomness, such as
dropout, draw what their solo run draws).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from sortkd_cache.pipelines.train import Diverged, Trainer, add_step

if TYPE_CHECKING:
    from sortkd_cache.data import Batch, SoftLabels
    from sortkd_cache.pipelines._eval import EvalViews
    from sortkd_cache.pipelines._sweep_grid import MemberSpec
    from sortkd_cache.pipelines._train_setup import Setup
    from sortkd_cache.world import World

__all__ = ["MemberRun"]


class MemberRun(Trainer):
    """A sweep member (see the module docstring)."""

    def __init__(self, spec: MemberSpec, world: World | None = None) -> None:
        super().__init__(spec.cfg, world)
        self.name = spec.name
        #: why the member stopped (its loss diverged), None while it trains
        self.failed: str | None = None
        #: finished before this sweep process started (a resumed sweep): nothing to do
        self.done = False
        self.rng: list[torch.Tensor] = []

    def attach(
        self,
        s: Setup,
        device: torch.device,
        eval_views: EvalViews | None,
        soft: SoftLabels | None,
    ) -> None:
        """Build the member on the sweep's setup: model, optimizer, schedule (``train``'s)."""
        self.device, self.s, self.soft, self.eval_views = device, s, soft, eval_views
        self.build()
        self.rng = _rng_state(device)
        self.done = self.cfg.resume and self.run_dir_finished()

    def run_dir_finished(self) -> bool:
        return (Path(self.cfg.out) / "summary.json").is_file()

    @property
    def key(self) -> tuple[str, int | None] | None:
        """Which soft labels it reads: (kind, top-K of dense rows), None for none."""
        if not self.loss.needs_teacher:
            return None
        store = self.s.store
        dense_topk = store is not None and store.layout.topk_per_batch and self.s.sparse is not None
        return self.cfg.logits, self.s.sparse.k if dense_topk and self.s.sparse else None

    def active(self, epoch: int) -> bool:
        """Whether the member trains in epoch ``epoch``."""
        return not self.done and self.failed is None and self.start_epoch <= epoch

    def take_step(self, batch: Batch, epoch: int, sums: dict[str, float]) -> None:
        """One optimizer step on ``batch`` (its soft labels this member's), in the member's
        own random state; a diverged loss marks the member failed."""
        _set_rng_state(self.rng, self.device)
        try:
            add_step(sums, self.step(batch, epoch), batch)
            self.step_losses.append(sums["last"])
        except Diverged as exc:
            self.failed = str(exc)
        self.rng = _rng_state(self.device)


def _rng_state(device: torch.device) -> list[torch.Tensor]:
    states = [torch.get_rng_state()]
    if device.type == "cuda":
        states.append(torch.cuda.get_rng_state(device))
    return states


def _set_rng_state(states: list[torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(states[0])
    if device.type == "cuda" and len(states) > 1:
        torch.cuda.set_rng_state(states[1], device)
