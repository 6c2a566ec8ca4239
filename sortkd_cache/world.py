"""One run context: which process this is among how many, and the device it uses.

mosaicml/streaming passes one ``World`` instead of reading the environment in many places;
so do the stages here. :meth:`World.from_env` reads torchrun's environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``) once, and resolves ``--device`` for this rank: under torchrun
with several processes, ``auto`` (on a CUDA machine), ``cuda`` and ``cuda:N`` become
``cuda:LOCAL_RANK``, so that every rank of a node has its own GPU (restrict the GPUs with
``CUDA_VISIBLE_DEVICES``). Outside torchrun it is rank 0 of 1 with the device as given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from sortkd_cache.errors import ConfigError

__all__ = ["World"]


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer") from None


def _wants_cuda(device: str) -> bool:
    if device.startswith("cuda"):
        return True
    if device == "auto":
        import torch

        return bool(torch.cuda.is_available())
    return False


@dataclass(frozen=True)
class World:
    """This process's place in a run: ``rank`` of ``size`` processes, ``local_rank`` on its
    node, and the ``device`` it computes on (as ``--device`` takes it: ``auto``, ``cpu``,
    ``cuda``, ``cuda:N``)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.size < 1 or not 0 <= self.rank < self.size:
            raise ConfigError(f"bad rank {self.rank} for world size {self.size}")
        if self.local_rank < 0:
            raise ConfigError(f"bad local rank {self.local_rank}")

    @classmethod
    def from_env(cls, device: str = "cpu", env: Mapping[str, str] | None = None) -> World:
        """The context torchrun's environment describes (rank 0 of 1 outside torchrun), with
        ``device`` resolved for this rank (see the module docstring)."""
        env = os.environ if env is None else env
        size = _int_env(env, "WORLD_SIZE", 1)
        rank = _int_env(env, "RANK", 0)
        local = _int_env(env, "LOCAL_RANK", 0)
        if size > 1 and _wants_cuda(device):
            device = f"cuda:{local}"
        return cls(rank=rank, size=size, local_rank=local, device=device)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes shared files and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.size > 1

    @property
    def backend(self) -> str:
        """The torch.distributed backend for this device: ``nccl`` on CUDA, else ``gloo``."""
        return "nccl" if _wants_cuda(self.device) else "gloo"
