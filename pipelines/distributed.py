"""torch.distributed glue for running stages under ``torchrun``.

Under torchrun (WORLD_SIZE > 1) the process group is initialised from the environment that
torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT): gloo on CPU, nccl when
the stage trains on CUDA. Each rank uses the GPU of its LOCAL_RANK. Outside torchrun every
helper is a no-op, so the same code runs single-process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

__all__ = [
    "all_sum",
    "backend_for",
    "barrier",
    "dist_context",
    "is_distributed",
    "local_rank",
    "rank_device",
    "world_info",
]


def world_info() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) outside it."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    """This process's index on its node (torchrun's LOCAL_RANK); 0 outside torchrun."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def _wants_cuda(device: str) -> bool:
    if device.startswith("cuda"):
        return True
    if device == "auto":
        import torch

        return torch.cuda.is_available()
    return False


def rank_device(device: str) -> str:
    """The device a rank should use for ``--device``.

    Under torchrun with several processes, ``auto`` (on a CUDA machine), ``cuda`` and
    ``cuda:N`` all become ``cuda:LOCAL_RANK`` so that every rank of a node has its own GPU
    (restrict the GPUs with CUDA_VISIBLE_DEVICES). Single-process, and for ``cpu``, the value
    is returned unchanged.
    """
    _, world = world_info()
    if world > 1 and _wants_cuda(device):
        return f"cuda:{local_rank()}"
    return device


def backend_for(device: str) -> str:
    """'nccl' for a CUDA device (or 'auto' on a CUDA machine), else 'gloo'."""
    return "nccl" if _wants_cuda(device) else "gloo"


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
def dist_context(backend: str = "gloo") -> Iterator[tuple[int, int]]:
    """Initialise the process group when launched by torchrun; yield (rank, world size).

    On success every rank meets at a final barrier before the group is destroyed. When the
    body raises, the group is torn down without that barrier (it could pair with a barrier
    another rank is waiting at inside the stage); torchrun then stops the other ranks.
    """
    rank, world = world_info()
    if world <= 1 or is_distributed():
        yield rank, world
        return
    import datetime

    import torch
    import torch.distributed as dist

    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    finished = False
    try:
        yield dist.get_rank(), dist.get_world_size()
        finished = True
    finally:
        if finished:
            dist.barrier()
        with contextlib.suppress(Exception):
            dist.destroy_process_group()
