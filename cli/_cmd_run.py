"""``sortkd-cache run``."""

from __future__ import annotations

from typing import Any

import click

from sortkd_cache.cli._options import config_options, emit_json
from sortkd_cache.pipelines.recipes import load_recipe, recipe_names
from sortkd_cache.pipelines.run import RunConfig

__all__ = ["commands"]


def _epilog() -> str:
    return "Shipped recipes: " + ", ".join(recipe_names())


@click.command("run", epilog=_epilog())
@click.argument("recipe")
@config_options(RunConfig)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def run_command(recipe: str, as_json: bool, **kw: Any) -> None:
    """Run a recipe: teacher, dump, sort, then every student variant x seed.

    RECIPE is a TOML file or the name of a shipped recipe. Stages already complete for the
    current recipe are skipped (OUT/run-state.json records each stage's configuration hash);
    a changed field reruns its stage and the stages after it. The report of the students
    (`sortkd-cache report OUT`'s: the table, paired differences, the conclusion in words)
    goes to stdout and to OUT/report.md, with OUT/report.json and OUT/report.html; one line
    per stage and the progress bars go to stderr.

    \b
    Examples:
      sortkd-cache run digits100_demo --out demo_out         # the `make demo` recipe
      sortkd-cache run pipelines/recipes/digits100_demo.toml --out demo_out --dry-run
      sortkd-cache run digits_demo --out demo_digits10       # the old 10-class demo
      sortkd-cache run digits_demo --out demo_digits10 --set dump.views=4  # redo dump onwards
      sortkd-cache run cifar100_resnet32x4_resnet8x4 --device cuda --out runs/r32x4-r8x4 \\
          --set teacher.checkpoint=ckpts/resnet32x4.pth --set dataset.data_root=data
    """
    from sortkd_cache.pipelines.run import run_recipe

    cfg = RunConfig(recipe=recipe, **kw)
    spec = load_recipe(cfg.recipe, cfg.overrides)
    report = run_recipe(
        spec,
        cfg.out or f"runs/{spec.name}",
        device=cfg.device,
        progress=cfg.progress,
        dry_run=cfg.dry_run,
        log=(lambda line: None) if cfg.dry_run else None,
        threads=cfg.threads,
    )
    if as_json:
        emit_json(report.to_dict())
    elif cfg.dry_run:
        width = max((len(s.stage) for s in report.stages), default=5)
        for s in report.stages:
            click.echo(f"{s.stage:<{width}}  {s.action:<10}  {s.reason}")
    else:
        click.echo(report.table, nl=False)
        click.echo(f"\nwritten: {report.out}/report.html, report.md, report.json")


commands = [run_command]
