"""Entry point: ``sortkd-cache COMMAND``; every command has ``--help`` with examples."""

from __future__ import annotations

import click

from sortkd_cache._version import __version__
from sortkd_cache.cli._errors import SortKDGroup

__all__ = ["cli", "main"]


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


def _register() -> None:
    from sortkd_cache.cli import _cmd_dump, _cmd_info

    for mod in (_cmd_dump, _cmd_info):
        cli.add_command(mod.command)
    for name in ("_cmd_sort", "_cmd_train", "_cmd_share", "_cmd_run"):
        try:
            mod = __import__(f"sortkd_cache.cli.{name}", fromlist=["commands"])
        except ModuleNotFoundError:
            continue
        for cmd in mod.commands:
            cli.add_command(cmd)


_register()


def main() -> None:
    cli(prog_name="sortkd-cache")


if __name__ == "__main__":
    main()
