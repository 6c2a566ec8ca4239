"""Run a list of independent tasks on Dask: threads locally, or a dask.distributed cluster."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sortkd_cache.errors import ConfigError

__all__ = ["connect", "run_tasks"]

Task = tuple[Any, ...]


@contextlib.contextmanager
def connect(address: str | None) -> Iterator[Any]:
    """A dask.distributed client for ``address`` (None: no client, local threads).

    Connect before touching any store, so a bad or unreachable address is refused (one line,
    exit code 2) before a stage changes anything.
    """
    if not address:
        yield None
        return
    try:
        from distributed import Client
        from distributed.comm.addressing import parse_address, parse_host_port
    except ImportError:  # pragma: no cover - distributed is a dependency
        raise ConfigError("--scheduler needs the 'distributed' package") from None
    try:
        scheme, loc = parse_address(address)
        if scheme in ("tcp", "tls"):
            parse_host_port(loc)  # refuse 'host' without a port before any connection attempt
    except ValueError as exc:
        raise ConfigError(f"bad Dask scheduler address '{address}': {exc}") from None
    try:
        client = Client(address, timeout="10s", set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"cannot reach Dask scheduler '{address}': {exc}") from None
    try:
        yield client
    finally:
        client.close()  # type: ignore[no-untyped-call]


def run_tasks(
    tasks: Sequence[Task],
    *,
    client: Any = None,
    num_workers: int | None = None,
    on_done: Callable[[], None] | None = None,
) -> list[Any]:
    """Run ``(func, *args)`` tuples; results in task order.

    Without ``client`` Dask's threaded scheduler runs them in this process; with a
    dask.distributed client (from :func:`connect`) its workers do.
    """
    if client is not None:
        return _run_distributed(tasks, client, on_done)
    from dask.base import compute
    from dask.callbacks import Callback
    from dask.delayed import delayed

    graph = [delayed(t[0], pure=False)(*t[1:]) for t in tasks]

    class _Tick(Callback):  # type: ignore[misc]
        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
            if on_done is not None:
                on_done()

    with _Tick():  # type: ignore[no-untyped-call]
        results = compute(  # type: ignore[no-untyped-call]
            *graph, scheduler="threads", num_workers=num_workers
        )
    return list(results)


def _run_distributed(
    tasks: Sequence[Task], client: Any, on_done: Callable[[], None] | None
) -> list[Any]:
    from distributed import as_completed

    futures = [client.submit(t[0], *t[1:], pure=False) for t in tasks]
    # as_completed needs the client's event loop: this client is not the default one
    for _ in as_completed(futures, loop=client.loop):  # type: ignore[no-untyped-call]
        if on_done is not None:
            on_done()
    return list(client.gather(futures))
