"""Run a list of independent tasks on Dask: threads locally, or a dask.distributed cluster."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sortkd_cache.errors import ConfigError

__all__ = ["run_tasks"]

Task = tuple[Any, ...]


def run_tasks(
    tasks: Sequence[Task],
    *,
    scheduler: str | None = None,
    num_workers: int | None = None,
    on_done: Callable[[], None] | None = None,
) -> list[Any]:
    """Run ``(func, *args)`` tuples; results in task order.

    ``scheduler=None`` uses Dask's threaded scheduler in this process; an address
    (``tcp://host:port``) submits the tasks to that dask.distributed scheduler.
    """
    if scheduler:
        return _run_distributed(tasks, scheduler, on_done)
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
    tasks: Sequence[Task], address: str, on_done: Callable[[], None] | None
) -> list[Any]:
    try:
        from distributed import Client, as_completed
    except ImportError:  # pragma: no cover - distributed is a dependency
        raise ConfigError("--scheduler needs the 'distributed' package") from None
    try:
        client = Client(address, timeout="10s", set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"cannot reach Dask scheduler '{address}': {exc}") from None
    try:
        futures = [client.submit(t[0], *t[1:], pure=False) for t in tasks]
        # as_completed needs the client's event loop: this client is not the default one
        for _ in as_completed(futures, loop=client.loop):  # type: ignore[no-untyped-call]
            if on_done is not None:
                on_done()
        return list(client.gather(futures))  # type: ignore[no-untyped-call]
    finally:
        client.close()  # type: ignore[no-untyped-call]
