"""A training component chosen by name from flat options: an optimizer, an lr schedule.

A component is a frozen dataclass whose fields are :func:`~sortkd_cache.options.opt` fields,
registered under its name. A run's configuration holds the fields of every component flat
(``--momentum``, ``--adam-beta2``, ``--milestones``), each declared once, by its component,
and taken into the configuration with :func:`~sortkd_cache.options.inherit`.
:func:`make_component` builds the chosen one from those flat values and refuses, in one line
naming both, a value set (to other than its default) for a field the chosen component does
not declare: no option is silently ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sortkd_cache.errors import ConfigError
from sortkd_cache.options import Spell, check_value, flag

if TYPE_CHECKING:
    from sortkd_cache._registry import Registry

__all__ = ["Component", "Options", "component_fields", "make_component"]


class Component(Protocol):
    def check(self, spell: Spell) -> None:
        """Checks across fields (one ConfigError line, options spelled by ``spell``)."""


class Options:
    """What every component dataclass has: its cross-field check and its record."""

    def check(self, spell: Spell) -> None:
        """Checks across fields (none unless a component has some)."""

    def options(self) -> dict[str, object]:
        """The options as used (``config.json``'s record), in field order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


C = TypeVar("C", bound=Component)


def component_fields(registry: Registry[type[Any]]) -> dict[str, dataclasses.Field[object]]:
    """Every field that some component of ``registry`` declares, by name (first declaration)."""
    out: dict[str, dataclasses.Field[object]] = {}
    for _, cls in registry.items():
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            out.setdefault(f.name, f)
    return out


def make_component(
    registry: Registry[type[C]], key: str, values: Mapping[str, object], spell: Spell = flag
) -> C:
    """The component named ``values[key]`` with its fields taken from ``values`` (a field left
    out keeps its default); a ConfigError line for an unknown name, a bad value, or a value
    set for a field that the chosen component does not declare."""
    name = values[key]
    if not isinstance(name, str) or name not in registry:
        raise ConfigError(f"unknown {spell(key)} {name!r}; known: {', '.join(registry.names())}")
    cls = registry.get(name)
    mine = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for field_name, f in component_fields(registry).items():
        value = values.get(field_name, f.default)
        if field_name not in mine and value != f.default:
            takes = ", ".join(spell(k) for k in mine) or "no options"
            shown = _shown(value)
            raise ConfigError(
                f"{spell(field_name)} {shown} does nothing with {spell(key)} {name} "
                f"(it takes {takes})"
            )
    given = {k: check_value(f, values[k], spell, owner=cls) for k, f in mine.items() if k in values}
    component = cls(**given)
    component.check(spell)
    return component


def _shown(value: object) -> str:
    """A value as the user typed it: ``adamw``, ``0.8``, ``10,20``."""
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return value if isinstance(value, str) else repr(value)
