"""``sortkd-cache verify`` and ``sortkd-cache copy``: share a store and trust what you open."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import click

from sortkd_cache.cli._options import (
    config_options,
    emit_json,
    parse_storage_options,
    storage_options_option,
    threads_option,
)
from sortkd_cache.errors import ConfigError
from sortkd_cache.pipelines.configs import SEED_MAX, DeriveConfig
from sortkd_cache.runtime import check_threads, compute_threads

if TYPE_CHECKING:
    from sortkd_cache.pipelines.verify import Recompute, RecomputeReport
    from sortkd_cache.store import VerifyReport

__all__ = ["commands"]


@click.command("verify")
@click.argument("store")
@click.option(
    "--dataset",
    default=None,
    metavar="SPEC",
    help="Your copy of the data: also check its fingerprint against the store's (and, with "
    "--recompute, recompute from it; default: where the store says it was made from).",
)
@click.option(
    "--data-root", default=None, help="Where cifar10/cifar100 live (--dataset, --recompute)."
)
@click.option(
    "--recompute",
    type=int,
    default=None,
    metavar="N",
    help="Also recompute N random sample-views (seeded, spread over views and chunks) with the "
    "store's teacher and compare them with the stored raw logits (dense rows, or a sparse "
    "store's kept entries) at a tolerance set by the stored dtype and recorded precision.",
)
@click.option(
    "--teacher-ckpt",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --recompute: the store's teacher weights (refused unless their sha256 is the "
    "store's; default: the file the store records, where it still has that sha256); "
    "refused for pretrained and random teachers, which are rebuilt without it.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, SEED_MAX),
    default=0,
    show_default=True,
    help="With --recompute: which sample-views.",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="With --recompute: where the teacher runs, auto | cpu | cuda[:N] (as dump and train).",
)
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@storage_options_option
def verify_command(
    store: str,
    dataset: str | None,
    data_root: str | None,
    recompute: int | None,
    teacher_ckpt: str | None,
    seed: int,
    device: str,
    threads: int | None,
    as_json: bool,
    no_progress: bool,
    storage_option: tuple[str, ...],
) -> None:
    """Read every chunk of STORE and check it: checksum, completeness, schema, provenance.

    Checks each chunk's crc32c checksum and size, that no chunk is missing, that no
    half-written *.partial file and no key outside the store layout (a crafted zip member) is
    left, each zarr.json's metadata checksum, that every array has the shape, chunks, dtype and
    fill value the metadata says, that every finished stage's progress markers are all set,
    and the provenance record (a known recipe with its parameters); with --dataset, that your
    data has the store's fingerprint. Each problem names the array and the chunk key. A
    STORE.partial-PID left beside STORE by a killed copy is named and removed.

    With --recompute N, N stored sample-views are recomputed with the teacher the store
    names (its sha256 checked first) and compared with the stored logits; rows that differ
    are named.

    Exit code 0: sound. 1: problems found (listed). 2: STORE cannot be opened as a store
    (bad path or URL, unreachable endpoint, missing credentials, newer schema), or the
    teacher for --recompute is not the store's.

    \b
    Examples:
      sortkd-cache verify digits.zarr
      sortkd-cache verify digits.zarr --dataset digits
      sortkd-cache verify team-c100.zip --dataset cifar100 --data-root ~/data
      sortkd-cache verify s3://team-bucket/c100.zarr --json
      sortkd-cache verify https://example.org/stores/c100.zip
      sortkd-cache verify s3://bkt/c100.zarr --storage-option endpoint_url=http://127.0.0.1:9000
      sortkd-cache verify in1k.zarr --recompute 64 --teacher-ckpt teacher.safetensors
    """
    from sortkd_cache.pipelines.verify import format_report, verify

    options = parse_storage_options(storage_option) or None
    threads_block = _threads_for(threads, recompute is not None, "--recompute")
    _recompute_only(recompute, teacher_ckpt, seed, device)
    check = None
    if recompute is not None:  # teacher and data are checked before anything is read
        args = (store, recompute, teacher_ckpt, data_root, seed, device)
        check, format_recompute = _recompute_check(args, options, dataset)
    progress = not (no_progress or as_json)
    report = verify(store, dataset, data_root=data_root, storage_options=options, progress=progress)
    with threads_block:
        result = check.run() if check is not None else None
    texts = [format_report(report)]
    texts += [format_recompute(result)] if result is not None else []
    _report(report, result, as_json, texts)


def _recompute_check(
    args: tuple[Any, ...], options: dict[str, Any] | None, dataset: str | None
) -> tuple[Recompute, Callable[[RecomputeReport], str]]:
    """verify --recompute's check (validated now) and its formatter; only this path imports
    the teacher's modules (torch): a plain verify does not."""
    from sortkd_cache.pipelines import verify as rc_mod

    rc = rc_mod.RecomputeConfig(*args)
    check = rc_mod.Recompute(replace(rc, storage_options=options, dataset=dataset))
    return check, rc_mod.format_recompute


def _threads_for(
    threads: int | None, computes: bool, needs: str
) -> contextlib.AbstractContextManager[object]:
    """The block's threads (``--threads``) where the command computes; nothing where it
    does not (``--threads`` there is refused now: exit 2, one line)."""
    if threads is not None and not computes:
        raise ConfigError(f"--threads {threads} applies with {needs} only (nothing computes)")
    check_threads(threads)
    return compute_threads(threads) if computes else contextlib.nullcontext()


def _recompute_only(recompute: int | None, ckpt: str | None, seed: int, device: str) -> None:
    """Refuse an option of --recompute set (to other than its default) without it."""
    given = (("--teacher-ckpt", ckpt, None), ("--seed", seed, 0), ("--device", device, "auto"))
    for name, value, default in given if recompute is None else ():
        if value != default:
            raise click.UsageError(f"{name} applies to --recompute only")


def _report(
    report: VerifyReport, result: RecomputeReport | None, as_json: bool, texts: list[str]
) -> None:
    """Print verify's report (and the recompute's: ``texts``, formatted); exit 1 unless both
    are sound."""
    if as_json:
        extra = {} if result is None else {"recompute": result.to_dict()}
        emit_json(report.to_dict() | extra)
    else:
        for text in texts:
            click.echo(text)
    if not report.sound or (result is not None and not result.ok):
        sys.exit(1)


@click.command("copy")
@click.argument("src")
@click.argument("dst")
@click.option("--overwrite", is_flag=True, help="Replace an existing store at DST.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
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
    no_progress: bool,
    storage_option: tuple[str, ...],
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

    opts = parse_storage_options(storage_option)
    config = DeriveConfig(**derive)  # a plain copy moves bytes: no torch, no threads
    with _threads_for(threads, config.active, "--topk, --views or --dtype"):
        result = copy(
            src,
            dst,
            overwrite=overwrite,
            progress=not (no_progress or as_json),
            src_storage_options={**opts, **parse_storage_options(src_option)} or None,
            dst_storage_options={**opts, **parse_storage_options(dst_option)} or None,
            derive=config,
        )
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(format_copy(result))


commands = [verify_command, copy_command]
