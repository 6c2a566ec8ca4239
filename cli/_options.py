"""Option helpers shared by commands: :func:`config_options` generates a command's click
options from a configuration's fields (:mod:`sortkd_cache.options`)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import typing
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

import click

from sortkd_cache.errors import ConfigError
from sortkd_cache.options import Opt, base_type, field_type, flag, opt, opt_of, storage_opt
from sortkd_cache.runtime import check_threads, compute_threads, threads_opt

__all__ = [
    "config_options",
    "emit_json",
    "parse_storage_options",
    "progress_option",
    "storage_options_option",
    "threads_for",
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


def _storage(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
    try:
        return parse_storage_options(value) or None
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def _kind(base: Any, info: Opt, default: Any) -> dict[str, Any]:
    """The click keywords of a field's value: a flag, a list, key=value pairs or a scalar."""
    if base is bool and not any("/" in n for n in info.names):
        # --x (False -> True) or, for an option on by default, --no-x (True -> False)
        return {"is_flag": True, **({"flag_value": False, "default": True} if default else {})}
    if base is bool:
        return {"default": default}
    if info.multiple:
        return {"multiple": True, "default": default or ()}
    if typing.get_origin(base) in (dict, Mapping):
        return {"multiple": True, "callback": _storage, "metavar": "KEY=VALUE"}
    shown = {"show_default": default is not None and not info.required}
    if typing.get_origin(base) is tuple:
        value = ",".join(map(str, default)) if default is not None else None
        return {"callback": _milestones, "default": value, **shown}
    return {"type": base if base in (int, float) else str, "default": default, **shown}


def _click_option(cls: type, f: dataclasses.Field[Any]) -> Callable[[F], F]:
    """The click option of one configuration field, from its metadata and annotation."""
    info = opt_of(f)
    base = base_type(field_type(cls, f))[0]
    default = None if f.default is dataclasses.MISSING else f.default
    bounds = info.bounds_text()
    help_text = f"{info.help} [{bounds}]".strip() if bounds else info.help
    kw: dict[str, Any] = {"help": help_text or None, "hidden": info.hidden, "cls": _Option}
    kw["choices_of"] = info.allowed if info.choices is not None else None
    kw["required"] = info.required
    kw.update(_kind(base, info, default))
    if info.metavar is not None:
        kw["metavar"] = info.metavar
    return click.option(*(info.names or (flag(f.name),)), f.name, **kw)


def config_options(
    cls: type, *, skip: Collection[str] = (), only: Collection[str] | None = None
) -> Callable[[F], F]:
    """A decorator adding one click option per CLI field of the configuration ``cls``, in
    declaration order (a field's metadata gives its flag, type, default, help and choices);
    ``skip`` leaves fields out, ``only`` keeps just those."""
    decorators = [
        _click_option(cls, f)
        for f in dataclasses.fields(cls)
        if opt_of(f).cli and f.name not in skip and (only is None or f.name in only)
    ]

    def apply(fn: F) -> F:
        for deco in reversed(decorators):
            fn = deco(fn)
        return fn

    return apply


@dataclasses.dataclass(frozen=True)
class _Shared:
    """The options that commands without a configuration of their own take (``dump``,
    ``sort``, ``copy``, ``info``): declared once, as the configurations declare them
    (``TrainConfig`` and ``VerifyConfig`` take the same declarations)."""

    threads: int | None = threads_opt()
    storage_options: dict[str, Any] | None = storage_opt()  # noqa: RUF009
    progress: bool = opt(True, "No progress bar.", names=("--no-progress",))


#: ``--threads N`` (the parameter ``threads``: an int or None)
threads_option = config_options(_Shared, only=("threads",))
#: ``--storage-option KEY=VALUE`` (repeatable; the parameter ``storage_options``: a dict or None)
storage_options_option = config_options(_Shared, only=("storage_options",))
#: ``--no-progress`` (the parameter ``progress``: True unless given)
progress_option = config_options(_Shared, only=("progress",))


def threads_for(
    threads: int | None, computes: bool, needs: str
) -> contextlib.AbstractContextManager[object]:
    """The block's threads (``--threads``) where the command computes; nothing where it
    does not (``--threads`` there is refused now: exit 2, one line)."""
    if threads is not None and not computes:
        raise ConfigError(f"--threads {threads} applies with {needs} only (nothing computes)")
    check_threads(threads)
    return compute_threads(threads) if computes else contextlib.nullcontext()
