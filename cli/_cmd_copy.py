"""``sortkd-cache copy``: share a store (bytes as they are, or a derived store)."""

from __future__ import annotations

from typing import Any

import click

from sortkd_cache.cli._options import (
    config_options,
    emit_json,
    parse_storage_options,
    progress_option,
    storage_options_option,
    threads_for,
    threads_option,
)
from sortkd_cache.pipelines.configs import DeriveConfig

__all__ = ["commands"]


@click.command("copy")
@click.argument("src")
@click.argument("dst")
@click.option("--overwrite", is_flag=True, help="Replace an existing store at DST.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@progress_option
@storage_options_option
@click.option(
    "--src-storage-option",
    "src_option",
    multiple=True,
    metavar="KEY=VALUE",
    help="Like --storage-option, for SRC only.",
)
@click.option(
    "--dst-storage-option",
    "dst_option",
    multiple=True,
    metavar="KEY=VALUE",
    help="Like --storage-option, for DST only.",
)
@config_options(DeriveConfig)
@threads_option
def copy_command(
    src: str,
    dst: str,
    threads: int | None,
    overwrite: bool,
    as_json: bool,
    progress: bool,
    storage_options: dict[str, Any] | None,
    src_option: tuple[str, ...],
    dst_option: tuple[str, ...],
    **derive: Any,
) -> None:
    """Copy a store from SRC to DST, chunk bytes as they are, then verify DST.

    SRC: a directory, a .zip, s3://, gs:// or http(s)://. DST: a directory, a .zip,
    s3:// or gs:// (an s3/gs URL ending in .zip uploads one zip file). DST is written aside
    and published only once complete and verified (a directory or zip is renamed into place;
    on s3/gs the root zarr.json is written last), so nobody ever opens a half copy. Only keys
    of the store layout are copied: a SRC holding any other key (a crafted zip member such as
    ../../x) is refused. DST must not be, contain or lie inside SRC. An existing DST is
    replaced only with --overwrite, and only when it is a store. The writer lock file is not
    copied; a DST.partial-PID left by a killed copy is removed.

    \b
    Examples:
      sortkd-cache copy digits.zarr digits.zip                      # one file to send around
      sortkd-cache copy digits.zarr /shared/team/digits.zarr
      sortkd-cache copy digits.zarr s3://team-bucket/digits.zarr
      sortkd-cache copy https://example.org/c100.zip c100.zarr      # download, verified
      sortkd-cache copy digits.zarr s3://bkt/digits.zarr \\
          --storage-option endpoint_url=http://127.0.0.1:9000
      sortkd-cache copy s3://a/c.zarr gs://b/c.zarr --dst-storage-option token=cloud
      sortkd-cache copy c100.zarr c100-top10.zip --topk 10 --views 0,1,2,3

    With --topk, --views or --dtype the destination is re-sliced (no teacher rerun): it is
    built chunk by chunk, then published the same way, and its provenance records the
    derivation. --topk keeps per sample-view the K largest logits, the label's logit, the
    row's mean/std and the tail's exact mass at the recorded temperatures (see `train --help`
    for what training from it gets exactly).
    """
    from sortkd_cache.pipelines.copy import copy, format_copy

    opts = storage_options or {}
    config = DeriveConfig(**derive)  # a plain copy moves bytes: no torch, no threads
    with threads_for(threads, config.active, "--topk, --views or --dtype"):
        result = copy(
            src,
            dst,
            overwrite=overwrite,
            progress=progress and not as_json,
            src_storage_options={**opts, **parse_storage_options(src_option)} or None,
            dst_storage_options={**opts, **parse_storage_options(dst_option)} or None,
            derive=config,
        )
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(format_copy(result))


commands = [copy_command]
