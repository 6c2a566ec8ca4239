"""The options of ``run``: each one field, which generates the command's options (see
:mod:`sortkd_cache.options`); checked on construction. The recipe itself is checked by
:mod:`~sortkd_cache.pipelines.recipes`."""

from __future__ import annotations

from dataclasses import InitVar, dataclass

from sortkd_cache.errors import ConfigError
from sortkd_cache.options import Spell, check_fields, cli_spell, opt
from sortkd_cache.runtime import threads_opt

__all__ = ["RunConfig"]


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """One ``run`` of a recipe (see ``sortkd-cache run --help``)."""

    recipe: str = opt(help="A TOML file or a shipped recipe's name.", cli=False)  # the argument
    out: str | None = opt(None, "Output directory [default: runs/<recipe name>].")
    overrides: tuple[str, ...] = opt(
        (),
        "Override a recipe key before validation (repeatable), e.g. dump.views=4, "
        "teacher.checkpoint=/ckpt/t.pth, train.epochs=2, seeds=[0]. VALUE is read as TOML, "
        "else as a string.",
        names=("--set",),
        metavar="KEY=VALUE",
        multiple=True,
    )
    #: None: the recipe's ``device`` (the one default that differs from train's ``auto``)
    device: str | None = opt(None, "auto | cpu | cuda[:N] [default: the recipe's]")
    threads: int | None = threads_opt()
    dry_run: bool = opt(False, "Only show which stages would run, and why.")
    progress: bool = opt(True, "No progress bars.", names=("--no-progress",))
    spell: InitVar[Spell | None] = None

    def __post_init__(self, spell: Spell | None) -> None:
        check_fields(self, spell or cli_spell(RunConfig))
        if self.dry_run:  # a plan computes nothing: a device or thread count would do nothing
            for name, value in (("device", self.device), ("threads", self.threads)):
                if value is not None:
                    raise ConfigError(f"--{name} {value} does nothing with --dry-run")
