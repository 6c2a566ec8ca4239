"""Option helpers shared by commands."""

from __future__ import annotations

import json
from typing import Any

import click

__all__ = ["emit_json", "storage_options_option", "parse_storage_options"]


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


def parse_storage_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` pairs (values parsed as JSON when they parse, else kept as strings)."""
    from sortkd_cache.errors import ConfigError

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
