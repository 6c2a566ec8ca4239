"""One registry idiom for every name -> implementation lookup.

Losses, models, datasets, augmentation recipes and sort methods each keep one
:class:`Registry` and register their entries where they are defined. CLI choices, ``--help``
lists, error messages ("unknown loss 'x'; known: ...") and the parametrised tests all read the
registry, so a new entry is offered, documented and tested without another edit.

Other packages add entries through an entry-point group (``group``, for example
``sortkd_cache.models``): an entry point ``name = "pkg.mod:obj"`` offers ``obj`` under
``name``. Entry points are read from the installed distributions' metadata and loaded lazily:
an entry is imported the first time its name is looked up (:meth:`Registry.get`), or when the
registry is listed with its entries (:meth:`Registry.items`); :meth:`Registry.names` reads
the names from the metadata alone, importing nothing. The registry's ``adapt`` turns the loaded
object into an entry (and refuses one of the wrong type). A name this package registers itself
wins over an entry point of the same name; one name offered by two packages is an error when it
is looked up. :meth:`Registry.origin` names the package an entry came from (``list`` shows it).

An entry describes itself without its heavy part: a model's name, family and description, a
dataset's grammar. What needs torch to build (a model's factory, a dataset's loader) is a
:class:`Lazy` callable naming ``"module:attr"``, imported on its first call, so that listing a
registry (``sortkd-cache list``) imports neither the modules that define the entries nor torch.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Callable, Iterator, Mapping
from importlib import metadata
from typing import Generic, ParamSpec, TypeVar, cast

from sortkd_cache.errors import ConfigError, SortKDError

__all__ = ["Lazy", "Registry", "entry_points", "lazy_names", "load_target", "named_entry"]

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

#: This package's entry-point groups (by prefix), read in one pass over the installed
#: distributions and cached per ``sys.path`` (a path added at run time is searched).
_PREFIX = "sortkd_cache."
_FOUND: dict[tuple[str, ...], dict[str, dict[str, list[metadata.EntryPoint]]]] = {}


def entry_points(group: str) -> dict[str, list[metadata.EntryPoint]]:
    """The entry points of ``group`` by name, one per distinct (package, target) pair."""
    key = tuple(sys.path)
    if key not in _FOUND:
        groups: dict[str, dict[str, list[metadata.EntryPoint]]] = {}
        for dist in metadata.distributions():
            for ep in dist.entry_points:
                if not ep.group.startswith(_PREFIX):
                    continue
                same = groups.setdefault(ep.group, {}).setdefault(ep.name, [])
                if all((_package(e), e.value) != (_package(ep), ep.value) for e in same):
                    same.append(ep)
        _FOUND[key] = groups
    return _FOUND[key].get(group, {})


def load_target(target: str) -> object:
    """The object ``"module:attr"`` names (``attr`` may be dotted), importing ``module``."""
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"a target is 'module:attr', got {target!r}")
    found: object = importlib.import_module(module)
    for part in attr.split("."):
        found = getattr(found, part)
    return found


def lazy_names(package: str, names: Mapping[str, str]) -> Callable[[str], object]:
    """The module ``__getattr__`` of ``package`` (PEP 562): each name of ``names`` (name ->
    the module that defines it: a submodule, ``"_base"``, or a name relative to ``package``,
    ``"._config"``, ``"..common.x"``) imported when first read, then kept. A package exposes
    its names so, and importing it for one light name (``from sortkd_cache.pipelines.train
    import TrainConfig``: no torch) does not import what runs the rest (torch, zarr, dask)."""

    def __getattr__(name: str) -> object:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        relative = module if module.startswith(".") else f".{module}"
        value: object = getattr(importlib.import_module(relative, package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__


class Lazy(Generic[P, R]):
    """A callable named by ``"module:attr"``: the module is imported on the first call (or
    :meth:`resolve`), not when the entry holding it is registered or listed. Two are equal
    when they name the same target."""

    __slots__ = ("_found", "target")

    def __init__(self, target: str) -> None:
        if target.count(":") != 1 or not all(target.partition(":")[::2]):
            raise ValueError(f"a lazy target is 'module:attr', got {target!r}")
        self.target = target
        self._found: Callable[P, R] | None = None

    def resolve(self) -> Callable[P, R]:
        """The callable itself (its module imported the first time)."""
        if self._found is None:
            found = load_target(self.target)
            if not callable(found):
                raise TypeError(f"{self.target} is a {type(found).__name__}, not a callable")
            self._found = cast("Callable[P, R]", found)
        return self._found

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.resolve()(*args, **kwargs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lazy) and other.target == self.target

    def __hash__(self) -> int:
        return hash(("Lazy", self.target))

    def __repr__(self) -> str:
        return f"Lazy({self.target!r})"


def named_entry(
    cls: type[T], what: str, error: type[SortKDError] = ConfigError
) -> Callable[[str, object, str], T]:
    """An ``adapt`` for entry points naming an instance of ``cls`` whose ``name`` attribute is
    the entry point's name; anything else is refused (``error``) naming the package."""

    def adapt(name: str, loaded: object, package: str) -> T:
        if not isinstance(loaded, cls) or getattr(loaded, "name", None) != name:
            raise error(
                f"{what} entry point {name!r} of package {package!r} is not a "
                f"{cls.__name__} named {name!r}: got {loaded!r}"
            )
        return loaded

    return adapt


def _package(ep: metadata.EntryPoint) -> str:
    dist = ep.dist
    return str(dist.name) if dist is not None else ep.module.partition(".")[0]


class Registry(Generic[T]):
    """Names to implementations of one kind (``"loss"``, ``"model"``, ...).

    ``error`` is the :class:`SortKDError` subclass raised for an unknown or duplicate name;
    ``extra`` is appended to the "known: ..." list of an unknown-name error (for lookups that
    also accept names outside the registry, such as torchvision models). ``group`` names the
    entry-point group other packages register in, and ``adapt(name, loaded, package)`` turns
    what an entry point loads into an entry (raising the registry's error for a wrong type).
    """

    def __init__(
        self,
        kind: str,
        *,
        error: type[SortKDError] = ConfigError,
        extra: str = "",
        group: str | None = None,
        adapt: Callable[[str, object, str], T] | None = None,
    ):
        if (group is None) != (adapt is None):
            raise ValueError("a registry's entry-point group and its adapt come together")
        self.kind = kind
        self.error = error
        self.extra = extra
        self.group = group
        self._adapt = adapt
        self._entries: dict[str, T] = {}
        self._origins: dict[str, str] = {}

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
        """The entry ``name`` (loading a package's entry point of that name the first time);
        the registry's error naming the value and the known names."""
        if isinstance(name, str) and name in self._entries:
            return self._entries[name]
        if isinstance(name, str) and name in self._plugins():
            return self._load(name)
        raise self.error(self.unknown_message(name))

    def origin(self, name: str) -> str | None:
        """The package (distribution) that registered ``name`` through an entry point; None for
        this package's own entries."""
        if name in self._entries:
            return self._origins.get(name)
        found = self._plugins().get(name)
        return ", ".join(_package(ep) for ep in found) if found else None

    def _plugins(self) -> dict[str, list[metadata.EntryPoint]]:
        return entry_points(self.group) if self.group is not None else {}

    def _load(self, name: str) -> T:
        """Import the entry point ``name``, adapt it and register it with its package."""
        found = self._plugins()[name]
        packages = [_package(ep) for ep in found]
        if len(found) > 1:
            raise self.error(
                f"{self.kind} {name!r} is registered by several packages: {', '.join(packages)}"
            )
        ep, package = found[0], packages[0]
        try:
            loaded = ep.load()
        except Exception as exc:
            first = (str(exc).splitlines() or [""])[0]
            raise self.error(
                f"{self.kind} {name!r} of package {package!r} ({ep.value}) cannot be loaded: "
                f"{type(exc).__name__}: {first}"
            ) from None
        if self._adapt is None:  # pragma: no cover - __init__ pairs group and adapt
            raise ValueError(f"{self.kind} registry has no adapt")
        value = self._adapt(name, loaded, package)
        self._entries[name] = value
        self._origins[name] = package
        return value

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
        """The registered names, sorted, with the names packages offer (nothing is imported)."""
        return sorted(set(self._entries) | set(self._plugins()))

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs sorted by name (every package's entry point is loaded)."""
        for name in self._plugins():
            if name not in self._entries:
                self._load(name)
        return sorted(self._entries.items())

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def snapshot(self) -> dict[str, T]:
        """A copy of the entries; :meth:`restore` puts them back (tests that register)."""
        return dict(self._entries)

    def restore(self, entries: dict[str, T]) -> None:
        self._entries = dict(entries)
        self._origins = {k: v for k, v in self._origins.items() if k in self._entries}

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._entries or name in self._plugins())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
