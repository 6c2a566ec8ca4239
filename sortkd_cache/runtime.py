"""How many threads one process computes with: ``--threads N`` of every computing command.

``--threads N`` sets torch's intra-op threads (``torch.set_num_threads``), its inter-op
threads (``torch.set_num_interop_threads``) and every BLAS / OpenMP pool threadpoolctl finds
(OpenBLAS, MKL, libgomp of numpy and scipy). Unset, it is the cores this process may run on
(its CPU affinity) divided by the ranks on this node (torchrun's ``LOCAL_WORLD_SIZE``), at
least 1, and never more than the process was already limited to (``OMP_NUM_THREADS``, or a
Python caller's ``torch.set_num_threads``): ranks of one node do not oversubscribe its cores,
and a caller that chose fewer threads keeps its count (and its floating-point results).

It is a runtime setting, never a result: it is not part of a stage's configuration hash or of
a ``--resume`` check. Torch lets a process set its inter-op threads once, before any parallel
work; :func:`compute_threads` sets them the first time and, when a later call in the same
process (a recipe's stages, tests) asks for another number, keeps the first and says so in
:attr:`Threads.interop` (the intra-op and BLAS pools follow every call, and are restored when
the block ends).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from threadpoolctl import threadpool_limits

from sortkd_cache.errors import ConfigError
from sortkd_cache.options import SweepRole, opt

__all__ = [
    "MAX_THREADS",
    "Threads",
    "check_threads",
    "compute_threads",
    "default_threads",
    "threads_opt",
]

#: The largest --threads accepted (a bound on a typo, not on machines).
MAX_THREADS = 4096


def threads_opt(*, recipe: bool = False, sweep: SweepRole | None = None) -> Any:
    """The ``--threads N`` field (``int | None``) of every command that computes; runtime
    (``recipe``, ``sweep``: as :func:`~sortkd_cache.options.opt`)."""
    return opt(
        None,
        "CPU threads: torch's intra- and inter-op threads and the BLAS pools (default: the "
        "cores of this process / the ranks on this node). Runtime: not part of the result.",
        ge=1, le=MAX_THREADS, metavar="N", runtime=True, recipe=recipe, sweep=sweep,
    )  # fmt: skip


@dataclass(frozen=True)
class Threads:
    """What a block computes with: intra-op threads (also the BLAS pools) and inter-op."""

    intra: int
    interop: int


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def default_threads(env: Mapping[str, str] | None = None) -> int:
    """The cores this process may use divided by the ranks on its node (at least 1)."""
    env = os.environ if env is None else env
    raw = env.get("LOCAL_WORLD_SIZE") or "1"
    try:
        local = max(1, int(raw))
    except ValueError:
        raise ConfigError(
            f"environment variable LOCAL_WORLD_SIZE={raw!r} is not an integer"
        ) from None
    return max(1, _cores() // local)


def check_threads(n: int | None, option: str = "--threads") -> int | None:
    """``n`` when it is a usable thread count (or None); else a ConfigError naming it."""
    if n is not None and not 1 <= n <= MAX_THREADS:
        raise ConfigError(f"{option} must be an integer from 1 to {MAX_THREADS}, got {n}")
    return n


@contextlib.contextmanager
def compute_threads(n: int | None = None) -> Iterator[Threads]:
    """Compute with ``n`` threads (None: :func:`default_threads`) inside the block; the
    intra-op count and the BLAS pools are restored when it ends."""
    import torch  # a computing command's first use of torch: --help and info never get here

    # unset: the node's share of the cores, never more than the process was already limited
    # to (OMP_NUM_THREADS, or a caller's torch.set_num_threads: in-process callers and tests
    # keep their own count, and with it their floating-point results)
    want = check_threads(n) or min(default_threads(), torch.get_num_threads())
    before = torch.get_num_threads()
    interop = _set_interop(torch.set_num_interop_threads, torch.get_num_interop_threads, want)
    torch.set_num_threads(want)
    try:
        with threadpool_limits(limits=want):
            yield Threads(intra=want, interop=interop)
    finally:
        torch.set_num_threads(before)


_INTEROP_SET: list[int] = []  # what this process set its inter-op threads to (torch: once)


def _set_interop(set_fn: Callable[[int], None], get_fn: Callable[[], int], want: int) -> int:
    """Set torch's inter-op threads to ``want`` unless this process already set them or has
    started parallel work (torch refuses a second setting); the count in effect."""
    if not _INTEROP_SET:
        with contextlib.suppress(RuntimeError):  # parallel work started: it stays as it is
            set_fn(want)
        _INTEROP_SET.append(get_fn())
    return _INTEROP_SET[0]
