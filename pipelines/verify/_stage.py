"""The verify stage: ``verify`` a store, and its human-readable report.

A thin wrapper over :func:`sortkd_cache.store.verify_store`; see it for what is checked.
"""

from __future__ import annotations

from typing import Any

from sortkd_cache.pipelines.common.formatting import size_text
from sortkd_cache.store import VerifyReport, verify_store

__all__ = ["format_report", "verify"]


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


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def format_report(report: VerifyReport, max_problems: int = 50) -> str:
    """The human-readable verify report: verdict, what was checked, each problem."""
    verdict = "SOUND" if report.sound else f"NOT SOUND ({_count(len(report.problems), 'problem')})"
    lines = [
        f"store      {report.location}",
        f"verdict    {verdict}",
        f"checked    {report.chunks_checked} chunks in {len(report.arrays)} arrays "
        f"({size_text(report.bytes_read)}) in {report.seconds:.1f} s"
        + ("; dataset fingerprint matches" if report.fingerprint_checked and report.sound else ""),
    ]
    for problem in report.problems[:max_problems]:
        lines.append(f"problem    [{problem.category}] {problem}")
    if len(report.problems) > max_problems:
        lines.append(f"problem    ... and {len(report.problems) - max_problems} more (use --json)")
    lines += [f"warning    {w}" for w in report.warnings]
    lines += [f"not checked {s}" for s in report.skipped]
    return "\n".join(lines)
