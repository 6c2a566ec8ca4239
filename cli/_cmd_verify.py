"""``sortkd-cache verify``: trust what you open."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from sortkd_cache.cli._options import config_options, emit_json, threads_for
from sortkd_cache.pipelines.configs import VerifyConfig

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
    threads_block = threads_for(cfg.threads, cfg.recompute is not None, "--recompute")
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


commands = [verify_command]
