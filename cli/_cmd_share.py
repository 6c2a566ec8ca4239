"""``sortkd-cache verify`` and ``sortkd-cache copy``: share a store and trust what you open."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from sortkd_cache.cli._options import (
    config_options,
    emit_json,
    parse_storage_options,
    progress_option,
    storage_options_option,
    threads_option,
)
from sortkd_cache.errors import ConfigError
from sortkd_cache.pipelines.configs import DeriveConfig, VerifyConfig
from sortkd_cache.runtime import check_threads, compute_threads

if TYPE_CHECKING:
    from sortkd_cache.pipelines.verify import Recompute, RecomputeReport
    from sortkd_cache.store import VerifyReport

__all__ = ["commands"]


@click.command("verify")
@click.argument("store")
@config_options(VerifyConfig)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def verify_command(store: str, as_json: bool, **kw: Any) -> None:
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

    cfg = VerifyConfig(store=store, **kw)
    threads_block = _threads_for(cfg.threads, cfg.recompute is not None, "--recompute")
    check = None
    if cfg.recompute is not None:  # teacher and data are checked before anything is read
        check, format_recompute = _recompute_check(cfg, cfg.recompute)
    report = verify(
        store,
        cfg.dataset,
        data_root=cfg.data_root,
        storage_options=cfg.storage_options,
        progress=cfg.progress and not as_json,
    )
    with threads_block:
        result = check.run() if check is not None else None
    texts = [format_report(report)]
    texts += [format_recompute(result)] if result is not None else []
    _report(report, result, as_json, texts)


def _recompute_check(
    cfg: VerifyConfig, samples: int
) -> tuple[Recompute, Callable[[RecomputeReport], str]]:
    """verify --recompute's check (validated now) and its formatter; only this path imports
    the teacher's modules (torch): a plain verify does not."""
    from sortkd_cache.pipelines import verify as rc_mod

    rc = rc_mod.RecomputeConfig(
        cfg.store, samples, teacher_ckpt=cfg.teacher_ckpt, data_root=cfg.data_root,
        seed=cfg.seed, device=cfg.device, storage_options=cfg.storage_options,
        dataset=cfg.dataset,
    )  # fmt: skip
    return rc_mod.Recompute(rc), rc_mod.format_recompute


def _threads_for(
    threads: int | None, computes: bool, needs: str
) -> contextlib.AbstractContextManager[object]:
    """The block's threads (``--threads``) where the command computes; nothing where it
    does not (``--threads`` there is refused now: exit 2, one line)."""
    if threads is not None and not computes:
        raise ConfigError(f"--threads {threads} applies with {needs} only (nothing computes)")
    check_threads(threads)
    return compute_threads(threads) if computes else contextlib.nullcontext()


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
    with _threads_for(threads, config.active, "--topk, --views or --dtype"):
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


commands = [verify_command, copy_command]
