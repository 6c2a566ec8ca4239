"""``sortkd-cache sort``."""

from __future__ import annotations

from typing import Any

import click

from sortkd_cache.cli._options import (
    config_options,
    emit_json,
    storage_options_option,
    threads_option,
)
from sortkd_cache.errors import ConfigError
from sortkd_cache.pipelines.configs import SortConfig
from sortkd_cache.runtime import compute_threads

__all__ = ["commands"]


@click.command("sort")
@click.argument("store")
@config_options(SortConfig)
@click.option(
    "--topk",
    type=int,
    default=None,
    hidden=True,
    help="Retired: a sparse store is made with `copy SRC DST --topk K`.",
)
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@storage_options_option
def sort_command(
    store: str,
    topk: int | None,
    threads: int | None,
    as_json: bool,
    storage_options: dict[str, Any] | None,
    **kw: Any,
) -> None:
    """Apply the sorting mechanism (or swap) to every stored row, in bulk, with Dask.

    Raw logits are never modified: the result goes to logits/<method> beside them (or into
    --out). Re-running is a no-op unless --overwrite; an interrupted run resumes.

    \b
    Examples:
      sortkd-cache sort digits.zarr
      sortkd-cache sort digits.zarr --method swap
      sortkd-cache sort s3://team/c100.zarr --out c100-sorted.zarr      # read-only source
      sortkd-cache sort /shared/c100.zarr --scheduler tcp://scheduler:8786
    """
    from sortkd_cache.pipelines.sort import sort_store

    if topk is not None:
        raise ConfigError(
            f"sort --topk is retired (its side copy trained nothing): make a sparse top-K "
            f"store with `sortkd-cache copy {store} DST --topk {topk}`, then sort or train it"
        )
    with compute_threads(threads):
        result = sort_store(SortConfig(store=store, storage_options=storage_options, **kw))
    if as_json:
        emit_json(result.to_dict())
    elif result.skipped:
        click.echo(
            f"{result.store}: '{result.method}' logits already present (use --overwrite to redo)"
        )
    else:
        frac = " ".join(f"{f:.3f}" for f in result.stats.get("changed_fraction", []))
        click.echo(
            f"{result.method}: wrote {result.chunks_written}/{result.chunks_total} chunks into "
            f"{result.store} in {result.seconds:.1f} s; rows changed per view: {frac}"
        )


commands = [sort_command]
