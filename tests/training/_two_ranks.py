"""Run by tests/training/test_distributed.py under torchrun (2 ranks, gloo): three members
train together, one of them ("b") has a NaN loss on rank 1 only from its 4th step on; then
"a" and "c" train again alone. Each rank writes what it saw to OUT/rank<R>.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from sortkd_cache.models import create_model, register_model
from sortkd_cache.training import Member, read_epoch
from sortkd_cache.world import World

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _engine import CLASSES, batches, constant, sgd, train_steps_in

BREAK_AT = 3  # 0-based step from which member b's loss is NaN on rank 1


class BreaksOnRankOne(nn.Module):
    """digits_mlp whose output turns NaN on rank 1 from forward BREAK_AT on (a test hook: a
    loss that diverges on one rank only)."""

    def __init__(self, num_classes: int, in_chans: int) -> None:
        super().__init__()
        self.inner = create_model("digits_mlp", num_classes, in_chans)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.inner(x)
        self.calls += 1
        if dist.get_rank() == 1 and self.calls > BREAK_AT:
            out = out * float("nan")
        return out


def main(out: Path) -> None:
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    world = World(dist.get_rank(), dist.get_world_size(), 0, "cpu")
    register_model("test_breaks_on_rank_one", family="test", description="test hook")(
        BreaksOnRankOne
    )
    data = batches(8, seed=world.rank)  # each rank its own half of every global batch

    def make(name: str, student: str, seed: int) -> Member:
        from sortkd_cache.losses import make_loss
        from sortkd_cache.training import MemberSpec

        spec = MemberSpec(name, student, CLASSES, 3, seed, make_loss("kd"), sgd(), constant,
                          source="soft")  # fmt: skip
        m = Member(spec, torch.device("cpu"))
        m.distribute(world)
        return m

    grid = [make("a", "digits_mlp", 0), make("b", "test_breaks_on_rank_one", 1),
            make("c", "digits_mlp", 2)]  # fmt: skip
    b_before = {k: v.clone() for k, v in grid[1].model.state_dict().items()}
    train_steps_in(grid, data, world)
    stats = read_epoch(grid, world)
    solos = [make("a", "digits_mlp", 0), make("c", "digits_mlp", 2)]
    for m in solos:
        train_steps_in([m], data, world)
    report = {
        "failure": {n: (s.failure.step if s.failure else None) for n, s in stats.items()},
        "local": {n: (s.failure.local if s.failure else None) for n, s in stats.items()},
        "b_finite": all(
            bool(torch.isfinite(v).all())
            for v in grid[1].model.state_dict().values()
            if v.is_floating_point()
        ),
        "b_moved": any(
            not torch.equal(v, b_before[k]) for k, v in grid[1].model.state_dict().items()
        ),
        "b_weights": [float(v.double().sum()) for v in grid[1].model.state_dict().values()],
        "equal_to_solo": {
            m.name: all(
                torch.equal(x, y)
                for x, y in zip(
                    m.model.state_dict().values(), solo.model.state_dict().values(), strict=True
                )
            )
            for m, solo in zip((grid[0], grid[2]), solos, strict=True)
        },
    }
    (out / f"rank{world.rank}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
