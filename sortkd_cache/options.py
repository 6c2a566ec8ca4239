"""How a stage declares its options: dataclass fields that carry their own metadata.

A stage configuration (``TrainConfig``, ``DumpConfig``, ``SortConfig``) is a frozen dataclass
whose fields are declared with :func:`opt`: default, one-line help, choices, bounds, which
mode or loss the option applies to, whether it changes what a run computes (checked on
resume) or only how it runs, and whether a recipe may set it. Everything else is generated
from these fields:

* the click options of the command (``sortkd_cache.cli._options.config_options``);
* the recipe keys and their validation (``pipelines/recipes/_check.py``);
* ``config.json`` (``asdict``) and its replay (``train --config``), checked the same way.

:func:`check_fields` is the one type, bound and choice check every configuration runs on
construction; ``spell`` renders a field's name the way the user wrote it (``--lr``,
``key 'students[0].lr'``), so each error is one line naming the bad value. Adding an option
is one :func:`opt` field in one place.

A large configuration is declared in :class:`Section` s (``TrainConfig``: schedule, student,
data, teacher rows, streaming, runtime, output), frozen dataclasses that it inherits, so its
fields, its command line and its ``config.json`` stay flat. A section names itself and says
how a sweep's members take its options (:data:`SWEEP_ROLES`); a field that differs from its
section says so in its own :func:`opt`. Which options a sweep shares, which a recipe may set
and which a recipe stage always hashes are read from the fields (:func:`field_names`), never
listed by hand.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal, TypeVar

from sortkd_cache.errors import ConfigError, SortKDError

__all__ = [
    "SWEEP_ROLES",
    "Applies",
    "Opt",
    "Section",
    "SweepRole",
    "Spell",
    "check_applies",
    "check_fields",
    "base_type",
    "check_value",
    "cli_spell",
    "expects",
    "field_names",
    "field_type",
    "flag",
    "inherit",
    "named",
    "opt",
    "opt_fields",
    "opt_of",
    "storage_opt",
]

T = TypeVar("T")
#: Turns a field name into the name the user typed (a CLI flag, a recipe key).
Spell = Callable[[str], str]
#: The allowed values of a choice option: fixed, or read from a registry when asked.
Choices = tuple[str, ...] | Callable[[], Sequence[str]]
#: How the members of one sweep (a grid, or a recipe's students trained in one pass) take an
#: option; see :data:`SWEEP_ROLES`.
SweepRole = Literal["member", "shared", "readers", "teacher", "grid", "sweep", "solo"]
SWEEP_ROLES: Mapping[SweepRole, str] = {
    "member": "each member its own value (the command line gives one to every member)",
    "shared": "every member the same value: one pass over the data serves one value",
    "readers": "the members that read soft labels share one value; the others keep its default",
    "teacher": "each member that reads soft labels its own value; the others keep its default",
    "grid": "an axis of the sweep's grid (the sweep sets it per member)",
    "sweep": "set by the sweep for every member (its directory, what to do with it, progress)",
    "solo": "does not apply to a sweep (a member trains from the cache, without it)",
}


def flag(key: str) -> str:
    """The CLI spelling of an option: ``dkd_beta`` -> ``--dkd-beta``."""
    return "--" + key.replace("_", "-")


@dataclass(frozen=True)
class Opt:
    """What a configuration declares about one option (a field's metadata)."""

    help: str = ""
    choices: Choices | None = None
    ge: float | None = None  #: lower bound, inclusive
    gt: float | None = None  #: lower bound, exclusive
    le: float | None = None  #: upper bound, inclusive
    #: the condition under which a value other than the default does anything (a name the
    #: configuration's ``APPLIES`` table knows); a set value where it does nothing is refused
    applies: str | None = None
    #: changes how a run executes or where it reads from, never what it computes: a resume
    #: may change it (every other option must match the stored configuration)
    runtime: bool = False
    #: a recipe may set it (a ``[train]``/``[[students]]`` or ``[dump]`` key)
    recipe: bool = False
    #: the field whose value a None here stands for (``data_seed`` None: same as ``seed``)
    fallback: str | None = None
    cli: bool = True  #: a command-line option (else set another way)
    hidden: bool = False  #: left out of ``--help``
    names: tuple[str, ...] = ()  #: the flag's spellings, when not ``--field-name``
    multiple: bool = False  #: a repeatable option (a ``tuple[str, ...]`` field)
    metavar: str | None = None  #: the value's name in ``--help`` (``SPEC``, ``N``)
    required: bool = False  #: the command line must give it (click refuses it missing)
    #: the section that declares it (set by :class:`Section`)
    section: str | None = None
    #: how a sweep's members take it (None: its section's role, else ``member``)
    sweep: SweepRole | None = None
    #: always part of a recipe stage's configuration hash, even at its default: the keys
    #: recorded since recipes began. Frozen: an option added later enters a stage's hash only
    #: when set, so the stages of an existing run keep their hash and are not rerun.
    hashed: bool = False

    def allowed(self) -> tuple[str, ...]:
        """The choices, read now (from their registry when that is how they are given)."""
        if self.choices is None:
            return ()
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def bounds_text(self) -> str:
        parts = []
        if self.gt is not None:
            parts.append(f"> {_num(self.gt)}")
        if self.ge is not None:
            parts.append(f">= {_num(self.ge)}")
        if self.le is not None:
            parts.append(f"<= {_num(self.le)}")
        return " and ".join(parts)


def _num(v: float) -> str:
    """A bound as written: whole numbers in full (4294967295, not 4.29497e+09)."""
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


def opt(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    default_factory: Callable[[], Any] | None = None,
    **meta: Any,
) -> Any:
    """A configuration field with its default, help and :class:`Opt` metadata."""
    info = Opt(help=help, **meta)
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata={"opt": info})
    return dataclasses.field(default=default, metadata={"opt": info})


def storage_opt() -> Any:
    """The ``--storage-option KEY=VALUE`` field (repeatable: a ``dict[str, Any] | None`` of
    fsspec storage options) of every command that opens a store; runtime."""
    return opt(
        None,
        "fsspec storage option for remote stores (repeatable), e.g. "
        "endpoint_url=http://127.0.0.1:9000 or anon=true.",
        names=("--storage-option",),
        metavar="KEY=VALUE",
        runtime=True,
    )


def opt_of(f: dataclasses.Field[Any]) -> Opt:
    """The field's :class:`Opt` (an empty one for a field declared without :func:`opt`)."""
    info = f.metadata.get("opt")
    return info if isinstance(info, Opt) else Opt()


def opt_fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    """The fields of a configuration class, in declaration order."""
    return dataclasses.fields(cls)


def field_names(cls: type, **meta: object) -> tuple[str, ...]:
    """The names of ``cls``'s fields whose :class:`Opt` has every given value, in declaration
    order: ``field_names(TrainConfig, sweep="shared")``, ``field_names(DumpConfig,
    hashed=True)``. ``sweep`` is the effective role (``member`` where nothing is said)."""
    for key in meta:
        if key not in Opt.__dataclass_fields__:
            raise TypeError(f"Opt has no attribute {key!r}")

    def value(info: Opt, key: str) -> object:
        got = getattr(info, key)
        return (got or "member") if key == "sweep" else got

    return tuple(
        f.name
        for f in dataclasses.fields(cls)
        if all(value(opt_of(f), k) == v for k, v in meta.items())
    )


class Section:
    """A group of a configuration's options: a frozen, keyword-only dataclass whose fields are
    declared with :func:`opt`, inherited by the configuration (which stays flat). The class
    keywords name the section and give its fields' sweep role::

        @dataclass(frozen=True, kw_only=True)
        class Streaming(Section, section="streaming", sweep="readers"):
            stream_window: int | None = opt(None, "...", ge=1)

    A field whose own :func:`opt` gives a ``sweep`` role keeps it (a section that is not
    uniform, as the schedule: a sweep shares ``epochs`` but not ``lr``)."""

    def __init_subclass__(
        cls, *, section: str | None = None, sweep: SweepRole | None = None
    ) -> None:
        super().__init_subclass__()
        if section is None:
            return  # a configuration made of sections, or a class that extends one
        for name, annotation in inspect.get_annotations(cls).items():
            f = cls.__dict__.get(name)
            if not isinstance(f, dataclasses.Field):
                if str(annotation).startswith(("ClassVar", "InitVar")):
                    continue
                raise TypeError(f"{cls.__name__}.{name}: declare a section's field with opt()")
            info = opt_of(f)
            info = dataclasses.replace(info, section=section, sweep=info.sweep or sweep)
            setattr(cls, name, _with_opt(f, info))


def _with_opt(f: dataclasses.Field[Any], info: Opt) -> dataclasses.Field[Any]:
    """A copy of the (not yet processed) field ``f`` with the metadata ``info``."""
    metadata = {**f.metadata, "opt": info}
    out: dataclasses.Field[Any]
    if f.default_factory is not dataclasses.MISSING:
        out = dataclasses.field(default_factory=f.default_factory, metadata=metadata)
    else:
        out = dataclasses.field(default=f.default, metadata=metadata)
    return out


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def field_type(owner: type, f: dataclasses.Field[Any]) -> Any:
    """The type of ``owner``'s field ``f``, resolved from its annotation (not its string)."""
    return _hints(owner)[f.name]


def base_type(tp: Any) -> tuple[Any, bool]:
    """``(the type without None, whether None is allowed)``: ``int | None`` -> ``(int, True)``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        arms = tuple(a for a in typing.get_args(tp) if a is not type(None))
        if len(arms) < len(typing.get_args(tp)):
            rest = arms[0] if len(arms) == 1 else typing.Union[arms]  # noqa: UP007
            return rest, True
    return tp, False


_SCALARS: dict[Any, str] = {int: "an integer", float: "a number", str: "a string"}


def expects(tp: Any) -> str:
    """What a value of type ``tp`` is, in words (for the error line)."""
    if tp in _SCALARS:
        return _SCALARS[tp]
    if tp is bool:
        return "true or false"
    if isinstance(tp, type) and issubclass(tp, PurePath):
        return "a path"
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(tp)))
    if typing.get_origin(tp) is tuple:
        return "a list of " + {int: "integers", str: "strings"}.get(
            typing.get_args(tp)[0], "values"
        )
    return str(tp)


def _typed(tp: Any, value: object) -> tuple[bool, object]:
    """(value has the type ``tp``, the value in its canonical form)."""
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value  # type: ignore[arg-type]
    if tp in (str, bool):
        return isinstance(value, tp), value
    if isinstance(tp, type) and issubclass(tp, PurePath):
        ok = isinstance(value, (str, PurePath)) and str(value) != ""
        return ok, tp(value) if ok else value  # type: ignore[arg-type]
    if typing.get_origin(tp) is typing.Literal:
        return value in typing.get_args(tp), value
    if typing.get_origin(tp) is tuple and typing.get_args(tp)[1:] == (Ellipsis,):
        item = typing.get_args(tp)[0]
        ok = isinstance(value, (list, tuple)) and all(_typed(item, v)[0] for v in value)
        return ok, tuple(value) if ok else value  # type: ignore[arg-type]
    return True, value  # a mapping or another structured field: its config checks it


def check_value(
    f: dataclasses.Field[Any], value: object, spell: Spell = flag, *, owner: type
) -> object:
    """``value`` in the field's canonical form, or one ConfigError line naming it; the
    field's type is ``owner``'s annotation, resolved (``int | None``, ``Path``, ``Literal``)."""
    info, name = opt_of(f), spell(f.name)
    tp, optional = base_type(field_type(owner, f))
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{name} is missing (required; no value given)")
    ok, value = _typed(tp, value)
    if not ok and typing.get_origin(tp) is typing.Literal:
        known = ", ".join(map(str, typing.get_args(tp)))
        raise ConfigError(f"unknown {name} {value!r}; known: {known}")
    if not ok:
        raise ConfigError(f"{name} expects {expects(tp)}, got {value!r} ({type(value).__name__})")
    if tp in (int, float):
        _check_bounds(info, name, "int" if tp is int else "float", value)  # type: ignore[arg-type]
    choices = info.allowed()
    if choices and value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; known: {', '.join(choices)}")
    return value


def _check_bounds(info: Opt, name: str, base: str, value: float) -> None:
    what = "an integer" if base == "int" else "a finite number"
    if base == "float" and not math.isfinite(value):
        low = " and ".join(p for p in info.bounds_text().split(" and ") if not p.startswith("<"))
        raise ConfigError(f"{name} must be {what}{' ' + low if low else ''}, got {value!r}")
    if info.gt is not None and not value > info.gt:
        raise ConfigError(f"{name} must be {what} > {_num(info.gt)}, got {value!r}")
    if info.ge is not None and not value >= info.ge:
        raise ConfigError(f"{name} must be {what} >= {_num(info.ge)}, got {value!r}")
    if info.le is not None and not value <= info.le:
        raise ConfigError(f"{name} must be {what} <= {_num(info.le)}, got {value!r}")


def check_fields(obj: object, spell: Spell = flag) -> None:
    """Check (and canonicalise, in place) every field of a frozen configuration instance."""
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = check_value(f, getattr(obj, f.name), spell, owner=type(obj))
        object.__setattr__(obj, f.name, value)


#: When an option does anything, by the name in its ``applies``: (condition on the whole
#: configuration, why a set value does nothing otherwise, spelled for the user).
Applies = Mapping[str, tuple[Callable[[Any], bool], Callable[[Any, Spell], str]]]


def check_applies(obj: object, table: Applies, spell: Spell = flag) -> None:
    """Refuse an option set (to other than its default) where it does nothing."""
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        info = opt_of(f)
        value = getattr(obj, f.name)
        if info.applies is None or value == f.default:
            continue
        holds, why = table[info.applies]
        if not holds(obj):
            shown = value if isinstance(value, str) else repr(value)
            raise ConfigError(f"{spell(f.name)} {shown} does nothing {why(obj, spell)}")


def inherit(cls: type, name: str, *, hashed: bool = False, sweep: SweepRole | None = None) -> Any:
    """A field declared like ``cls``'s field ``name`` (same default and metadata): for a
    configuration that takes one option of another, without declaring it again. ``hashed``
    and ``sweep`` set those :class:`Opt` attributes on the copy."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    info = opt_of(f)
    info = dataclasses.replace(info, hashed=hashed or info.hashed, sweep=sweep or info.sweep)
    return dataclasses.field(default=f.default, metadata={**f.metadata, "opt": info})


def cli_spell(cls: type) -> Spell:
    """How the command line spells ``cls``'s fields: their declared flag, else ``--name``."""
    names = {
        f.name: opt_of(f).names[0].split("/")[0] for f in dataclasses.fields(cls) if opt_of(f).names
    }
    return lambda key: names.get(key, flag(key))


def named(option: str, check: Callable[[], T]) -> T:
    """``check()``; the :class:`SortKDError` it raises becomes one ConfigError line that
    starts with ``option`` (the name the user typed)."""
    try:
        return check()
    except SortKDError as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(first if first.startswith(option) else f"{option}: {first}") from None
