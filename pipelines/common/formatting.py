"""Sizes in words, for the commands' reports (torch-free)."""

from __future__ import annotations

__all__ = ["size_text"]


def size_text(n: int) -> str:
    """``n`` bytes in B, KiB, MiB or GiB (one decimal above bytes)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - unreachable
