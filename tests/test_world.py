"""The run context: read once from torchrun's environment, the device resolved per rank."""

from __future__ import annotations

import pytest

from sortkd_cache.errors import ConfigError
from sortkd_cache.world import World


def test_outside_torchrun_it_is_one_process_on_the_given_device() -> None:
    w = World.from_env("cpu", env={})
    assert w == World(0, 1, 0, "cpu")
    assert w.is_main and not w.distributed and w.backend == "gloo"
    assert World.from_env("cuda:3", env={}).device == "cuda:3"  # single process: unchanged


def test_torchrun_ranks_and_the_local_gpu() -> None:
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}
    w = World.from_env("cuda", env=env)
    assert (w.rank, w.size, w.local_rank, w.device) == (3, 4, 1, "cuda:1")
    assert not w.is_main and w.distributed and w.backend == "nccl"
    assert World.from_env("cuda:0", env=env).device == "cuda:1"
    assert World.from_env("cpu", env=env).device == "cpu"  # gloo ranks stay on the CPU


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not an integer"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, "bad rank 2 for world size 2"),
        ({"WORLD_SIZE": "0"}, "bad rank 0 for world size 0"),
        ({"LOCAL_RANK": "-1"}, "bad local rank -1"),
    ],
)
def test_a_bad_environment_is_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        World.from_env("cpu", env=env)


def test_frozen() -> None:
    w = World()
    with pytest.raises(AttributeError):
        w.rank = 1  # type: ignore[misc]
