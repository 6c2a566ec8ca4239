"""The copy stage: ``copy`` a store, and its human-readable report.

A thin wrapper over :func:`sortkd_cache.store.copy_store` (see it for how a copy is
published), or over :func:`~sortkd_cache.pipelines.copy._derive.derive_store` for a
re-sliced copy.
"""

from __future__ import annotations

from typing import Any

from sortkd_cache.pipelines.common.formatting import size_text
from sortkd_cache.pipelines.copy._config import DeriveConfig
from sortkd_cache.store import CopyResult, copy_store

__all__ = ["copy", "format_copy"]


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
        from sortkd_cache.pipelines.copy._derive import derive_store  # torch: a plain copy has none

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


def format_copy(result: CopyResult) -> str:
    rate = result.bytes / result.seconds if result.seconds > 0 else 0.0
    verdict = "verified" if result.verify.sound else "NOT SOUND"
    cleaned = "".join(f"{line}\n" for line in result.cleaned)
    return cleaned + (
        f"copied {result.keys} keys ({size_text(result.bytes)}) from {result.src} to "
        f"{result.dst} in {result.seconds:.1f} s ({size_text(int(rate))}/s); destination {verdict}"
    )
