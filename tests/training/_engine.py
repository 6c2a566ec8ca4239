"""Small helpers of the engine tests: members built in memory, batches of random images."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from sortkd_cache.data import Batch
from sortkd_cache.losses import make_loss
from sortkd_cache.training import Member, MemberSpec, plan_units, settle
from sortkd_cache.world import World

WORLD = World(device="cpu")
CLASSES = 10


def sgd(lr: float = 0.05, **kw: Any) -> Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer]:
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4, **kw)


def adamw(lr: float = 1e-3) -> Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer]:
    return lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=5e-2)


def constant(opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.MultiStepLR(opt, [], gamma=0.1)


def member(name: str, seed: int, loss: str = "kd", student: str = "digits_cnn_s",
           optimizer: Any = None) -> Member:  # fmt: skip
    spec = MemberSpec(
        name, student, CLASSES, 3, seed, make_loss(loss), optimizer or sgd(), constant,
        source="soft" if loss != "ce" else None,
    )  # fmt: skip
    return Member(spec, torch.device("cpu"))


def batches(n: int, seed: int = 0, size: int = 16) -> list[tuple[Batch, dict[str, Any]]]:
    """``n`` batches of random 8x8 images, labels and teacher logits."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        x = torch.randn(size, 3, 8, 8, generator=g)
        y = torch.randint(0, CLASSES, (size,), generator=g)
        soft = 3 * torch.randn(size, CLASSES, generator=g)
        out.append((Batch(x, y, torch.arange(i * size, (i + 1) * size)), {"soft": soft}))
    return out


def train_steps(
    members: Sequence[Member], data: Sequence[tuple[Batch, dict[str, Any]]], *, stacked: bool
) -> None:
    """One epoch's steps of ``members`` over ``data`` (stacked as one group, or one by one)."""
    train_steps_in(members, data, WORLD, stacked=stacked)


def train_steps_in(
    members: Sequence[Member],
    data: Sequence[tuple[Batch, dict[str, Any]]],
    world: World,
    *,
    stacked: bool = False,
) -> None:
    """:func:`train_steps` in ``world`` (this rank's part of each batch)."""
    units = plan_units(members, [list(members)] if stacked else [], world)
    for m in members:
        m.begin_epoch()
    for batch, rows in data:
        settle([p for u in units for p in u.forward_backward(batch, rows, 0)], world)


def state(m: Member) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.model.state_dict().items()}
