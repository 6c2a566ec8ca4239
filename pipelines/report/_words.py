"""The report's conclusion: one plain sentence per paired difference.

Each sentence gives the mean difference in points of test top-1, its 95% interval and how
many seeds agree in sign; a difference whose interval holds zero (or that has one seed, so
no interval) is "within noise", whatever its mean.
"""

from __future__ import annotations

from typing import Any

__all__ = ["conclusions"]


def _sentence(p: dict[str, Any]) -> str:
    v, b, d, n = p["variant"], p["baseline"], p["mean"], p["n"]
    agree = f"{p['agree']} of {n} seeds agree in sign"
    if n < 2:
        return f"{v} against {b}: {d:+.2f} points on one seed, no interval: within noise."
    interval = f"95% interval {p['low']:+.2f} to {p['high']:+.2f}"
    if p["within_noise"]:
        return f"{v} against {b}: {d:+.2f} points, within noise ({interval}; {agree})."
    if d > 0:
        return f"{v} beats {b} by {d:.2f} points ({interval}; {agree})."
    return f"{v} loses {-d:.2f} points against {b} ({interval}; {agree})."


def conclusions(paired: list[dict[str, Any]]) -> list[str]:
    """The sentences of ``paired`` (report.json's ``paired`` entries), in their order."""
    return [_sentence(p) for p in paired]
