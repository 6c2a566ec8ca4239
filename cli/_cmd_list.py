"""``sortkd-cache list``."""

from __future__ import annotations

import click

from sortkd_cache.cli._options import emit_json
from sortkd_cache.errors import ConfigError
from sortkd_cache.pipelines.list import KINDS, catalog

__all__ = ["command"]


@click.command("list")
@click.argument("kinds", nargs=-1, type=click.Choice(KINDS))
@click.option("--sweep", "sweep_dir", default=None, help="A sweep directory: its members.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def command(kinds: tuple[str, ...], sweep_dir: str | None, as_json: bool) -> None:
    """List the registered names: models (--teacher, --student), datasets (--dataset),
    augmentation recipes (--augment), losses (--loss), sort methods (sort --method) and the
    URL schemes a STORE may use (backends).
    Names that an installed package registers (entry points) show the package they come from.

    \b
    Examples:
      sortkd-cache list
      sortkd-cache list models
      sortkd-cache list datasets augment --json
      sortkd-cache list --sweep sweeps/digits       # a sweep's members and their status
    """
    if sweep_dir is not None:
        if kinds:
            kinds_given = " ".join(kinds)
            raise ConfigError(f"list {kinds_given} does nothing with --sweep (it lists members)")
        _list_sweep(sweep_dir, as_json)
        return
    found = catalog(kinds)
    if as_json:
        emit_json(found)
        return
    for kind, entry in found.items():
        also = f" {entry['also']}" if entry["also"] else ""
        packages = entry["packages"]
        names = [f"{n} (from {packages[n]})" if n in packages else n for n in entry["names"]]
        click.echo(f"{kind:9s} {', '.join(names)}{also}")


def _list_sweep(path: str, as_json: bool) -> None:
    from sortkd_cache.pipelines.sweep import describe_sweep

    found = describe_sweep(path)
    if as_json:
        emit_json(found)
        return
    click.echo(f"sweep {found['sweep']} (stack {found['stack']}): {len(found['members'])} members")
    for name, info in found["members"].items():
        top1 = info.get("final_test_top1")
        shown = f"{top1:.2f}%" if isinstance(top1, float) else "-"
        click.echo(f"  {info['status']:9s} {shown:>7s}  {name}")
