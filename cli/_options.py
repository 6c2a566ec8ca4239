"""Option helpers shared by commands."""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable, Collection
from typing import Any, TypeVar

import click

from sortkd_cache.errors import ConfigError
from sortkd_cache.options import base_type, field_type, flag, opt_of
from sortkd_cache.runtime import MAX_THREADS

__all__ = [
    "config_options",
    "emit_json",
    "parse_storage_options",
    "storage_options_option",
    "threads_option",
]

F = TypeVar("F", bound=Callable[..., Any])


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


def parse_storage_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` pairs (values parsed as JSON when they parse, else kept as strings)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--storage-option expects key=value, got '{pair}'")
        key, value = pair.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


storage_options_option = click.option(
    "--storage-option",
    "storage_option",
    multiple=True,
    metavar="KEY=VALUE",
    help="fsspec storage option for remote stores (repeatable), e.g. "
    "endpoint_url=http://127.0.0.1:9000 or anon=true.",
)


threads_option = click.option(
    "--threads",
    type=int,
    default=None,
    metavar="N",
    help="CPU threads: torch's intra- and inter-op threads and the BLAS pools (default: the "
    "cores of this process / the ranks on this node). Runtime: not part of the result. "
    f"[1 <= N <= {MAX_THREADS}]",
)


def _milestones(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got '{value}'") from None


class _Option(click.Option):
    """A click option whose help lists its choices, read when the help is shown (a registry's
    names are only imported then)."""

    def __init__(
        self, *args: Any, choices_of: Callable[[], tuple[str, ...]] | None = None, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.choices_of = choices_of

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None or self.choices_of is None:
            return record
        return record[0], f"{' | '.join(self.choices_of())}. {record[1]}".strip()


def _click_option(cls: type, f: dataclasses.Field[Any]) -> Callable[[F], F]:
    """The click option of one configuration field, from its metadata and annotation."""
    info = opt_of(f)
    base = base_type(field_type(cls, f))[0]
    default = None if f.default is dataclasses.MISSING else f.default
    bounds = info.bounds_text()
    help_text = f"{info.help} [{bounds}]".strip() if bounds else info.help
    kw: dict[str, Any] = {"help": help_text or None, "hidden": info.hidden, "cls": _Option}
    kw["choices_of"] = info.allowed if info.choices is not None else None
    if base is bool and not info.names:
        kw["is_flag"] = True
    elif base is bool:
        kw["default"] = default
    elif typing.get_origin(base) is tuple:
        kw["callback"] = _milestones
        kw["default"] = ",".join(map(str, default)) if default is not None else None
        kw["show_default"] = default is not None
    else:
        kw["type"] = base if base in (int, float) else str
        kw["default"] = default
        kw["show_default"] = default is not None
    return click.option(*(info.names or (flag(f.name),)), f.name, **kw)


def config_options(cls: type, *, skip: Collection[str] = ()) -> Callable[[F], F]:
    """A decorator adding one click option per CLI field of the configuration ``cls``, in
    declaration order (a field's metadata gives its flag, type, default, help and choices)."""
    decorators = [
        _click_option(cls, f)
        for f in dataclasses.fields(cls)
        if opt_of(f).cli and f.name not in skip
    ]

    def apply(fn: F) -> F:
        for deco in reversed(decorators):
            fn = deco(fn)
        return fn

    return apply
