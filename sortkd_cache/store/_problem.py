"""What ``verify`` and the cheap checks report: a :class:`Problem` each, in a
:class:`VerifyReport` (a leaf module: every check imports it, it imports none of them)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Problem", "VerifyReport"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a store: a category, where (array, chunk key) and what."""

    # schema, shape, provenance, limits, progress, missing, checksum, truncated, corrupt,
    # content, partial, foreign, fingerprint
    category: str
    message: str
    array: str | None = None
    chunk: str | None = None

    def __str__(self) -> str:
        where = "/".join(p for p in (self.array, self.chunk) if p)
        return f"{where}: {self.message}" if where else self.message

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify_store` found. ``sound`` when there is no problem."""

    location: str
    problems: tuple[Problem, ...] = ()
    warnings: tuple[str, ...] = ()
    arrays: tuple[str, ...] = ()
    chunks_checked: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    fingerprint_checked: bool = False
    skipped: tuple[str, ...] = field(default_factory=tuple)

    @property
    def sound(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(sound=self.sound, seconds=round(self.seconds, 3))
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
