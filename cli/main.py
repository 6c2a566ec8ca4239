"""Entry point: ``sortkd-cache COMMAND``; every command has ``--help`` with examples."""

from __future__ import annotations

import importlib
import logging
import os

import click

from sortkd_cache import __version__
from sortkd_cache.cli._errors import SortKDGroup

__all__ = ["COMMAND_MODULES", "cli", "main"]


@click.group(cls=SortKDGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


#: Every command module; one that fails to import stops the CLI with its error (never a
#: command silently missing from the group).
COMMAND_MODULES = (
    "_cmd_dump",
    "_cmd_info",
    "_cmd_sort",
    "_cmd_train",
    "_cmd_sweep",
    "_cmd_share",
    "_cmd_run",
    "_cmd_list",
    "_cmd_report",
)


def _register() -> None:
    for name in COMMAND_MODULES:
        mod = importlib.import_module(f"sortkd_cache.cli.{name}")
        commands = getattr(mod, "commands", None) or [mod.command]
        for cmd in commands:
            cli.add_command(cmd)


_register()


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
