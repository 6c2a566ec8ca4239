"""The share stage: ``verify`` and ``copy`` a store, and their human-readable reports.

Thin wrappers over :func:`sortkd_cache.store.verify_store` and
:func:`sortkd_cache.store.copy_store`; see those for what is checked and how a copy is
published.
"""

from __future__ import annotations

from typing import Any

from sortkd_cache.pipelines._copy_config import DeriveConfig
from sortkd_cache.store import CopyResult, VerifyReport, copy_store, verify_store

__all__ = ["copy", "format_copy", "format_report", "verify"]


def verify(
    location: str,
    dataset: str | None = None,
    *,
    data_root: str | None = None,
    storage_options: dict[str, Any] | None = None,
    progress: bool = True,
) -> VerifyReport:
    """Verify a store (every chunk); with ``dataset``, also your copy's fingerprint."""
    return verify_store(
        location,
        dataset,
        storage_options,
        data_root=data_root,
        progress=progress,
    )


def copy(
    src: str,
    dst: str,
    *,
    overwrite: bool = False,
    progress: bool = True,
    storage_options: dict[str, Any] | None = None,
    src_storage_options: dict[str, Any] | None = None,
    dst_storage_options: dict[str, Any] | None = None,
    derive: DeriveConfig | None = None,
) -> CopyResult:
    """Copy a store key by key, verify the destination, publish it atomically; with a
    ``derive`` that asks for anything (``copy --topk/--views/--dtype``), a re-sliced copy."""
    if derive is not None and (derive.active or derive.topk_temperatures is not None):
        from sortkd_cache.pipelines.derive import derive_store  # torch: a plain copy has none

        opts = storage_options or {}
        return derive_store(
            src,
            dst,
            derive,
            overwrite=overwrite,
            progress=progress,
            src_storage_options={**opts, **(src_storage_options or {})} or None,
            dst_storage_options={**opts, **(dst_storage_options or {})} or None,
        )
    return copy_store(
        src,
        dst,
        overwrite=overwrite,
        progress=progress,
        storage_options=storage_options,
        src_storage_options=src_storage_options,
        dst_storage_options=dst_storage_options,
    )


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - unreachable


def format_report(report: VerifyReport, max_problems: int = 50) -> str:
    """The human-readable verify report: verdict, what was checked, each problem."""
    verdict = "SOUND" if report.sound else f"NOT SOUND ({_count(len(report.problems), 'problem')})"
    lines = [
        f"store      {report.location}",
        f"verdict    {verdict}",
        f"checked    {report.chunks_checked} chunks in {len(report.arrays)} arrays "
        f"({_size(report.bytes_read)}) in {report.seconds:.1f} s"
        + ("; dataset fingerprint matches" if report.fingerprint_checked and report.sound else ""),
    ]
    for problem in report.problems[:max_problems]:
        lines.append(f"problem    [{problem.category}] {problem}")
    if len(report.problems) > max_problems:
        lines.append(f"problem    ... and {len(report.problems) - max_problems} more (use --json)")
    lines += [f"warning    {w}" for w in report.warnings]
    lines += [f"not checked {s}" for s in report.skipped]
    return "\n".join(lines)


def format_copy(result: CopyResult) -> str:
    rate = result.bytes / result.seconds if result.seconds > 0 else 0.0
    verdict = "verified" if result.verify.sound else "NOT SOUND"
    cleaned = "".join(f"{line}\n" for line in result.cleaned)
    return cleaned + (
        f"copied {result.keys} keys ({_size(result.bytes)}) from {result.src} to "
        f"{result.dst} in {result.seconds:.1f} s ({_size(int(rate))}/s); destination {verdict}"
    )
