"""``sortkd-cache list``."""

from __future__ import annotations

import click

from sortkd_cache.cli._options import emit_json
from sortkd_cache.pipelines.catalog import KINDS

__all__ = ["command"]


@click.command("list")
@click.argument("kinds", nargs=-1, type=click.Choice(KINDS))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def command(kinds: tuple[str, ...], as_json: bool) -> None:
    """List the registered names: models (--teacher, --student), datasets (--dataset),
    augmentation recipes (--augment), losses (--loss) and sort methods (sort --method).

    \b
    Examples:
      sortkd-cache list
      sortkd-cache list models
      sortkd-cache list datasets augment --json
    """
    from sortkd_cache.pipelines.catalog import catalog

    found = catalog(kinds)
    if as_json:
        emit_json(found)
        return
    for kind, entry in found.items():
        also = f" {entry['also']}" if entry["also"] else ""
        click.echo(f"{kind:9s} {', '.join(entry['names'])}{also}")
