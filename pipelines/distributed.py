"""torch.distributed glue for running stages under ``torchrun``.

Under torchrun (WORLD_SIZE > 1) the process group is initialised from the environment
(gloo on CPU, nccl when the stage trains on CUDA). Outside torchrun every helper is a no-op,
so the same code runs single-process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["barrier", "dist_context", "is_distributed", "world_info"]


def world_info() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) outside it."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    if is_distributed():
        import torch.distributed as dist

        dist.barrier()


@contextlib.contextmanager
def dist_context(backend: str = "gloo") -> Iterator[tuple[int, int]]:
    """Initialise the process group when launched by torchrun; yield (rank, world size)."""
    rank, world = world_info()
    if world <= 1 or is_distributed():
        yield rank, world
        return
    import datetime

    import torch.distributed as dist

    dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    try:
        yield dist.get_rank(), dist.get_world_size()
    finally:
        with contextlib.suppress(Exception):
            dist.barrier()
        dist.destroy_process_group()
