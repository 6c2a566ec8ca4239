"""Fixtures of the stages' multi-process tests (torchrun dump, train and sweep; the Dask
sort): ports, subprocess commands and environments, store equality.

The tests start real process groups (``torch.distributed.run`` with gloo, two ranks) and a real
``dask.distributed`` cluster (two worker processes), all bound to 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

# Attributes recording when or how long, not what: they legitimately differ between runs
# (and so does the metadata checksum, which covers them).
VOLATILE_KEYS = frozenset({"created", "dump_seconds", "seconds", "store_id", "sortkd_cache_sha256"})


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def scale_env() -> dict[str, str]:
    """Environment of CLI subprocesses: no progress bars, one thread per process (the same
    deterministic CPU kernels in every process), no torchrun variables inherited."""
    env = dict(os.environ)
    env["SORTKD_NO_PROGRESS"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    env["MKL_NUM_THREADS"] = "1"
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SORTKD_DEBUG"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="session")
def cli_cmd() -> Callable[..., list[str]]:
    """Command line of a single-process CLI run."""

    def make(*args: str) -> list[str]:
        return [sys.executable, "-m", "sortkd_cache.cli", *args]

    return make


@pytest.fixture(scope="session")
def torchrun_cmd() -> Callable[..., list[str]]:
    """Command line of a CLI run under torchrun on this host: ``nproc`` ranks, gloo on CPU."""

    def make(*args: str, nproc: int = 2) -> list[str]:
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            str(nproc),
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(_free_port()),
            "-m",
            "sortkd_cache.cli",
            *args,
        ]

    return make


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _arrays(group: Any, prefix: str = "") -> dict[str, Any]:
    out = {f"{prefix}{name}": arr for name, arr in group.arrays()}
    for name, sub in group.groups():
        out |= _arrays(sub, f"{prefix}{name}/")
    return out


def assert_stores_equal(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> None:
    """Same arrays, shapes, chunks, dtypes, attributes (bar timestamps and durations) and the
    same decoded bytes of every array; logits without any missing (NaN) chunk."""
    import zarr

    ra, rb = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
    assert _strip(dict(ra.attrs)) == _strip(dict(rb.attrs))
    arrays_a, arrays_b = _arrays(ra), _arrays(rb)
    assert sorted(arrays_a) == sorted(arrays_b)
    for name, x in arrays_a.items():
        y = arrays_b[name]
        assert (x.shape, x.chunks, x.dtype) == (y.shape, y.chunks, y.dtype), name
        assert _strip(dict(x.attrs)) == _strip(dict(y.attrs)), name
        vx, vy = np.asarray(x[...]), np.asarray(y[...])
        assert vx.tobytes() == vy.tobytes(), f"{name}: decoded values differ"
        if vx.dtype.kind == "f":
            assert not np.isnan(vx).any(), f"{name}: missing chunks (NaN)"


@pytest.fixture(scope="session")
def stores_equal() -> Callable[[str | os.PathLike[str], str | os.PathLike[str]], None]:
    """``stores_equal(a, b)`` asserts two stores are equal bit for bit (see above)."""
    return assert_stores_equal
