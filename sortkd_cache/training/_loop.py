"""The epoch loop: shared batches, shared soft-label sources, every member's step.

    units = plan_units(members, stacked_groups, world)
    train_epoch(units, batches, sources, epoch, world=world)
    stats = read_epoch(members, world)     # the epoch's one host read, every member's values

Each batch is made once (:class:`~sortkd_cache.data.EpochBatches`) and its soft labels are read
once per source (a logits kind); then every unit takes its members' steps on it
(:mod:`~sortkd_cache.training._stepper`). Nothing in the loop reads a tensor value on the host:
losses, their parts, correct counts and divergence flags stay on the device until
:func:`read_epoch` reads them all at once (all-reduced over the ranks first, in one collective).
A source may also be the batches' own (``EpochBatches(soft=source)``): the loop then takes its
rows from the batch instead of asking it again.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

from sortkd_cache.training._stepper import Unit, settle

if TYPE_CHECKING:
    from sortkd_cache.data import Batch, EpochBatches, SoftLabels
    from sortkd_cache.training._member import EpochStats, Member
    from sortkd_cache.world import World

__all__ = ["read_epoch", "train_epoch"]


def _begin(batches: EpochBatches, sources: Mapping[Hashable, SoftLabels], epoch: int,
           last: int) -> None:  # fmt: skip
    """Tell every source the batches do not drive itself that the epoch starts."""
    others = [s for s in sources.values() if s is not batches.soft]
    if not others:
        return
    view, order = batches.view(epoch), batches.local_order(epoch)
    ahead = batches.view(epoch + 1) if epoch + 1 <= last else None
    for source in others:
        source.begin_epoch(view, order, ahead)


def _rows(
    batch: Batch, batches: EpochBatches, sources: Mapping[Hashable, SoftLabels]
) -> dict[Hashable, Any]:
    return {
        key: batch.soft if source is batches.soft else source.rows(batch)
        for key, source in sources.items()
    }


def train_epoch(
    units: Sequence[Unit],
    batches: EpochBatches,
    sources: Mapping[Hashable, SoftLabels],
    epoch: int,
    *,
    world: World,
    last: int,
    on_batch: Callable[[Batch], object] | None = None,
) -> None:
    """Every unit's members train epoch ``epoch`` (0-based) on one pass over ``batches``;
    ``last``: the last epoch the run will train (no soft labels are read ahead past it)."""
    members = [m for unit in units for m in unit.members]
    for m in members:
        m.begin_epoch()
    _begin(batches, sources, epoch, last)
    for batch in batches.epoch(epoch, last=last):
        rows = _rows(batch, batches, sources)
        pending = [p for unit in units for p in unit.forward_backward(batch, rows, epoch)]
        settle(pending, world)
        if on_batch is not None:
            on_batch(batch)
    for m in members:
        m.end_epoch()


def read_epoch(members: Sequence[Member], world: World) -> dict[str, EpochStats]:
    """Every member's epoch, read on the host at once: the sums added over the ranks, the
    step losses and divergence flags this rank's (one all-reduce, one read)."""
    if not members:
        return {}
    records = [m.record() for m in members]
    summed = torch.cat([s for s, _ in records])
    if world.distributed:
        dist.all_reduce(summed)
    values = torch.cat([summed, *(local for _, local in records)]).tolist()
    out: dict[str, EpochStats] = {}
    at = len(summed)
    start = 0
    for m, (s, local) in zip(members, records, strict=True):
        mine_summed = values[start : start + len(s)]
        mine_local = values[at : at + len(local)]
        start, at = start + len(s), at + len(local)
        out[m.name] = m.stats(mine_summed, mine_local)
    return out
