"""``sortkd-cache info``."""

from __future__ import annotations

from typing import Any

import click

from sortkd_cache.cli._options import emit_json, storage_options_option

__all__ = ["command"]


@click.command("info")
@click.argument("store")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@storage_options_option
def command(store: str, as_json: bool, storage_options: dict[str, Any] | None) -> None:
    """Show a store's provenance, contents and statistics.

    \b
    Examples:
      sortkd-cache info digits.zarr
      sortkd-cache info digits.zarr --json | jq .logits
      sortkd-cache info s3://team-bucket/c100.zarr --storage-option anon=true
    """
    from sortkd_cache.pipelines.info import format_info, store_info

    info = store_info(store, storage_options)
    if as_json:
        emit_json(info)
    else:
        click.echo(format_info(info))
