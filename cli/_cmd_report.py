"""``sortkd-cache report``."""

from __future__ import annotations

import click

from sortkd_cache.cli._options import emit_json

__all__ = ["command"]


@click.command("report")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--out", default=None,
    help="Directory for report.html, report.md and report.json (created; an existing one "
    "must be empty or hold a report). Without it the report is only printed.",
)  # fmt: skip
@click.option(
    "--baseline", default=None,
    help="What each variant is paired against, seed by seed: a variant's name, a loss "
    "(ce, kd, ...), a logits kind (raw, sort, ...) or 'dense' (the twin without top-K). "
    "[default: its CE twin where the runs hold CE; sort/swap also against raw, top-K "
    "against dense]",
)  # fmt: skip
@click.option(
    "--mix", is_flag=True,
    help="Average runs from different caches, teachers or datasets together (they are "
    "flagged either way; without --mix they are reported apart).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print report.json's data.")
def command(
    paths: tuple[str, ...], out: str | None, baseline: str | None, mix: bool, as_json: bool
) -> None:
    """Compare any runs: mean ± std over seeds, paired differences, curves, provenance.

    PATHS: run directories (train), sweep directories, recipe outputs (run), or folders
    holding them, in any mix. Runs are grouped by variant (every option but the seed); the
    options in which they differ are named.

    \b
    Examples:
      sortkd-cache report sweeps/monday sweeps/friday --out reports/week
      sortkd-cache report runs/ --baseline raw --out reports/sort-vs-raw
      sortkd-cache report demo_out --json | jq .conclusions
    """
    from sortkd_cache.pipelines.report import report

    data, text = report(list(paths), out, baseline=baseline, mix=mix)
    if as_json:
        emit_json(data)
        return
    click.echo(text, nl=False)
    if out is not None:
        click.echo(f"\nwritten: {out}/report.html, report.md, report.json")
