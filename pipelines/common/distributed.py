"""torch.distributed glue for running stages under ``torchrun``.

Under torchrun (WORLD_SIZE > 1) the process group is initialised for the run's
:class:`~sortkd_cache.world.World` (read once from torchrun's RANK, WORLD_SIZE and LOCAL_RANK;
MASTER_ADDR and MASTER_PORT are torch's): gloo on CPU, nccl when the stage trains on CUDA.
Each rank uses the GPU of its LOCAL_RANK. Outside torchrun every helper is a no-op, so the
same code runs single-process.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sortkd_cache.world import World

__all__ = ["all_sum", "barrier", "dist_context", "is_distributed"]


def is_distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    if is_distributed():
        import torch.distributed as dist

        dist.barrier()


def all_sum(values: Sequence[float]) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (float64); ``values`` itself outside one."""
    if not is_distributed():
        return [float(v) for v in values]
    import torch
    import torch.distributed as dist

    device = (
        torch.device("cuda", torch.cuda.current_device())
        if dist.get_backend() == "nccl"
        else torch.device("cpu")
    )
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return [float(v) for v in t.tolist()]


@contextlib.contextmanager
def dist_context(world: World, backend: str | None = None) -> Iterator[World]:
    """Initialise the process group of ``world`` (with ``backend``, else the world's own:
    nccl on CUDA, gloo on CPU) when it has several processes; yield ``world``.

    On success every rank meets at a final barrier before the group is destroyed. When the
    body raises, the group is torn down without that barrier (it could pair with a barrier
    another rank is waiting at inside the stage); torchrun then stops the other ranks.
    """
    if not world.distributed or is_distributed():
        yield world
        return
    import torch
    import torch.distributed as dist

    backend = backend or world.backend
    if backend == "nccl":
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(
        backend=backend,
        rank=world.rank,
        world_size=world.size,
        timeout=datetime.timedelta(minutes=30),
    )
    finished = False
    try:
        yield world
        finished = True
    finally:
        if finished:
            dist.barrier()
        with contextlib.suppress(Exception):
            dist.destroy_process_group()
