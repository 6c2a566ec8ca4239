"""Epoch orders: a permutation per (seed, epoch), the streamed order that keeps chunk locality,
and each rank's part of an order.

:func:`epoch_order` is the default order of an epoch: a permutation drawn from (seed, epoch)
only. :func:`shard_order` cuts any global order into ranks.

The streamed order (:func:`streamed_order`):

A store holds soft labels in chunks of ``chunk_samples`` consecutive samples. To train
without holding a whole view in memory, an epoch visits the samples chunk by chunk, as
mosaicml/streaming's block shuffles do, with the shuffle made independent of the number of
ranks through a fixed number of *lanes* (its "canonical nodes"):

1. The chunks are shuffled, and dealt round-robin to ``lanes`` lanes.
2. Each lane's chunks are cut, in that order, into *windows* of ``window`` chunks, and the
   samples inside each window are shuffled.
3. Global batch k (``batch_size`` samples) is lane 0's k-th ``batch_size / lanes`` samples,
   then lane 1's, ..., as long as every lane has that many left.
4. What the lanes have left after that (less than a chunk per lane, plus one step) follows,
   lane by lane.

Every random number is :func:`~sortkd_cache.augment.counter_uniform` of (seed, epoch, ...), so
the order depends on (seed, epoch) and the layout only, never on ranks, workers or machines.

Cut into ranks by :func:`shard_order`
(global batch k split into ``world`` consecutive parts), rank r's part of a global batch is
exactly the lanes ``r * lanes / world .. (r + 1) * lanes / world - 1``: each rank reads only
its own lanes' chunks (plus, at the epoch's end, the few chunks its part of step 4 falls
in), and at any moment it needs the samples of about ``window`` chunks per lane. Resident
soft-label memory is bounded by the window, not by the number of samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import torch

from sortkd_cache.augment import counter_bits, counter_uniform
from sortkd_cache.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["StreamLayout", "auto_lanes", "epoch_order", "shard_order", "streamed_order"]

_ORDER_TAG = 0x5EED_57E4_0D3E_0001
MAX_AUTO_LANES = 8


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of an epoch: a permutation drawn from (seed, epoch) only."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def shard_order(order: torch.Tensor, batch_size: int, rank: int, world: int) -> torch.Tensor:
    """Rank ``rank``'s part of every global batch of ``order`` (all of it when ``world == 1``).

    Global batch k is cut into ``world`` equal, consecutive parts; rank r takes part r.
    Batched by ``batch_size // world``, every rank's k-th step then sees its part of the
    single-process run's k-th batch, so DDP's gradient average equals the single-process
    gradient. The last, shorter batch is cut the same way into ``len // world`` samples per
    rank; its ``len % world`` leftover samples are skipped, so every rank takes the same steps.
    """
    if world == 1:
        return order
    b = batch_size // world
    full = (order.numel() // batch_size) * batch_size
    head = order[:full].view(-1, world, b)[:, rank, :].reshape(-1)
    tail = order[full:]
    t = tail.numel() // world
    if t == 0:
        return head
    return torch.cat([head, tail[: t * world].view(world, t)[rank]])


def auto_lanes(batch_size: int, limit: int = MAX_AUTO_LANES) -> int:
    """The default lane count: the largest divisor of ``batch_size`` that is <= ``limit``.

    It depends on the global batch only (never on the ranks); any rank count that divides
    it can train with it (1, 2, 4 and 8 ranks for a batch that is a multiple of 8).
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    return max(d for d in range(1, min(limit, batch_size) + 1) if batch_size % d == 0)


@dataclass(frozen=True)
class StreamLayout:
    """How an epoch streams: the store's chunking plus the lanes and window of the shuffle."""

    num_samples: int
    chunk_samples: int
    lanes: int
    window: int = 2  # chunks per shuffle window, per lane

    def __post_init__(self) -> None:
        for name in ("num_samples", "chunk_samples", "lanes", "window"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"stream {name} must be an integer >= 1, got {value!r}")

    @property
    def num_blocks(self) -> int:
        return -(-self.num_samples // self.chunk_samples)

    def block_of(self, samples: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The chunk each sample index lies in."""
        return samples // self.chunk_samples

    def check_batch(self, batch_size: int, world: int = 1) -> None:
        """Refuse a global batch the lanes do not divide, or ranks that do not divide them."""
        if batch_size % self.lanes:
            raise ConfigError(
                f"--batch-size {batch_size} is not a multiple of the {self.lanes} stream lanes"
            )
        if self.lanes % world:
            raise ConfigError(
                f"streamed soft labels: {world} ranks do not divide the {self.lanes} stream "
                f"lanes; pass --stream-lanes a multiple of {world} that divides the batch"
            )


def _lane_streams(layout: StreamLayout, key: int) -> list[npt.NDArray[np.int64]]:
    """Each lane's samples: its chunks in dealt order, shuffled inside each window."""
    n, s = layout.num_samples, layout.chunk_samples
    blocks = np.arange(layout.num_blocks, dtype=np.int64)
    dealt = blocks[np.argsort(counter_uniform(key, blocks, 0, 0), kind="stable")]
    lanes = []
    for lane in range(layout.lanes):
        mine = dealt[lane :: layout.lanes]
        parts = []
        for w in range(0, len(mine), layout.window):
            window = mine[w : w + layout.window]
            samples = np.concatenate(
                [np.arange(b * s, min(n, (b + 1) * s), dtype=np.int64) for b in window]
            )
            keys = counter_uniform(key, samples, 1, 0)
            parts.append(samples[np.argsort(keys, kind="stable")])
        lanes.append(np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64))
    return lanes


def streamed_order(
    layout: StreamLayout, batch_size: int, seed: int, epoch: int
) -> npt.NDArray[np.int64]:
    """The global sample order of an epoch (a permutation of ``range(num_samples)``).

    See the module doc. ``batch_size`` is the global batch; it must be a multiple of
    ``layout.lanes``.
    """
    layout.check_batch(batch_size)
    key = int(counter_bits(_ORDER_TAG, seed, epoch, 0))
    lanes = _lane_streams(layout, key)
    per_lane = batch_size // layout.lanes
    steps = min(len(x) for x in lanes) // per_lane
    head = np.stack([x[: steps * per_lane].reshape(steps, per_lane) for x in lanes], axis=1)
    tail = [x[steps * per_lane :] for x in lanes]
    return np.concatenate([head.reshape(-1), *tail]).astype(np.int64, copy=False)
