"""One registry idiom for every name -> implementation lookup.

Losses, models, datasets, augmentation recipes and sort methods each keep one
:class:`Registry` and register their entries where they are defined. CLI choices, ``--help``
lists, error messages ("unknown loss 'x'; known: ...") and the parametrised tests all read the
registry, so a new entry is offered, documented and tested without another edit.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from sortkd_cache.errors import ConfigError, SortKDError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Names to implementations of one kind (``"loss"``, ``"model"``, ...).

    ``error`` is the :class:`SortKDError` subclass raised for an unknown or duplicate name;
    ``extra`` is appended to the "known: ..." list of an unknown-name error (for lookups that
    also accept names outside the registry, such as torchvision models).
    """

    def __init__(self, kind: str, *, error: type[SortKDError] = ConfigError, extra: str = ""):
        self.kind = kind
        self.error = error
        self.extra = extra
        self._entries: dict[str, T] = {}

    def add(self, name: str, value: T) -> T:
        """Register ``value`` under ``name``; a duplicate or empty name is an error."""
        self.check_name(name)
        if name in self._entries:
            raise self.error(f"{self.kind} {name!r} is already registered")
        self._entries[name] = value
        return value

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def decorator(value: T) -> T:
            return self.add(name, value)

        return decorator

    def get(self, name: str) -> T:
        """The entry ``name``; the registry's error naming the value and the known names."""
        if isinstance(name, str) and name in self._entries:
            return self._entries[name]
        raise self.error(self.unknown_message(name))

    def unknown_message(self, name: object, candidates: list[str] | None = None) -> str:
        """``unknown KIND 'x' (did you mean 'y'?); known: a, b, c``."""
        hint = ""
        if isinstance(name, str):
            close = difflib.get_close_matches(name, candidates or self.names(), n=1)
            if close and close[0] != name:
                hint = f" (did you mean {close[0]!r}?)"
        known = ", ".join(self.names()) + (f" {self.extra}" if self.extra else "")
        return f"unknown {self.kind} {name!r}{hint}; known: {known}"

    def check_name(self, name: object) -> str:
        """``name`` if it can be registered (a non-empty string), else the registry's error."""
        if not isinstance(name, str) or not name:
            raise self.error(f"{self.kind} name must be a non-empty string, got {name!r}")
        return name

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs sorted by name."""
        return sorted(self._entries.items())

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def snapshot(self) -> dict[str, T]:
        """A copy of the entries; :meth:`restore` puts them back (tests that register)."""
        return dict(self._entries)

    def restore(self, entries: dict[str, T]) -> None:
        self._entries = dict(entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
