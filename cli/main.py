"""Entry point: ``sortkd-cache COMMAND``; every command has ``--help`` with examples."""

from __future__ import annotations

import importlib
import logging
import os

import click

from sortkd_cache import __version__
from sortkd_cache.cli._errors import SortKDGroup

__all__ = ["COMMANDS", "COMMAND_MODULES", "all_commands", "cli", "main"]

#: Every command by name, with the module that defines it. A module is imported when one of
#: its commands runs (``--help`` imports them all to list them): ``list``, ``info`` and
#: ``report`` do not build ``train``'s options, which read every loss (an installed plugin's
#: loss module, and torch with it) and take most of a command's start-up.
COMMANDS: dict[str, str] = {
    "dump": "_cmd_dump",
    "info": "_cmd_info",
    "sort": "_cmd_sort",
    "train": "_cmd_train",
    "sweep": "_cmd_sweep",
    "verify": "_cmd_verify",
    "copy": "_cmd_copy",
    "run": "_cmd_run",
    "list": "_cmd_list",
    "report": "_cmd_report",
}
#: Every command module; one that fails to import stops the CLI with its error when one of
#: its commands is run or the commands are listed (never a command silently missing).
COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))


class _LazyGroup(SortKDGroup):
    """The group of :data:`COMMANDS`, each module imported on first use (click's lazy
    loading: ``list_commands`` names them, ``get_command`` imports one)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            self._load(module)
        return self.commands.get(cmd_name)

    def _load(self, module: str) -> None:
        mod = importlib.import_module(f"sortkd_cache.cli.{module}")
        for cmd in getattr(mod, "commands", None) or [mod.command]:
            if COMMANDS.get(str(cmd.name)) != module:
                raise RuntimeError(f"command {cmd.name!r} of {module} is not in COMMANDS")
            self.add_command(cmd)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sortkd-cache")
def cli() -> None:
    """Run the teacher once; train every student from a sorted logit cache.

    \b
    Typical session:
      sortkd-cache train --dataset digits --student digits_cnn_l --loss ce --out runs/teacher
      sortkd-cache dump  --dataset digits --teacher digits_cnn_l \\
                         --teacher-ckpt runs/teacher/model.safetensors --views 8 --out digits.zarr
      sortkd-cache sort  digits.zarr
      sortkd-cache train --cache digits.zarr --student digits_cnn_s --logits sort \\
                         --loss kd --out runs/kd
    """


def all_commands() -> dict[str, click.Command]:
    """Every command by name, every command module imported (docs and tests read them)."""
    ctx = click.Context(cli, info_name="sortkd-cache")
    found = {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}
    return {name: cmd for name, cmd in found.items() if cmd is not None}


def _quiet_library_logs() -> None:
    """gcsfs logs every failed request with a traceback before raising; the CLI reports the
    failure as one line. ``SORTKD_DEBUG=1`` keeps those logs."""
    if os.environ.get("SORTKD_DEBUG") != "1":
        for name in ("gcsfs", "google", "s3fs", "aiobotocore", "botocore"):
            logging.getLogger(name).addHandler(logging.NullHandler())


def main() -> None:
    _quiet_library_logs()
    cli(prog_name="sortkd-cache")


if __name__ == "__main__":
    main()
