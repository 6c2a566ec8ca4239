"""Option types come from the annotations (``typing.get_type_hints``), not their strings
(issue 29, item 5): a throwaway configuration with ``Optional[int]``, ``Path`` and
``Literal[...]`` fields is checked like the stage configurations, on construction and through
the click options generated from it (exit 2, one line naming the bad value)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import click
import pytest
from click.testing import CliRunner

from sortkd_cache.cli._errors import SortKDGroup
from sortkd_cache.cli._options import config_options
from sortkd_cache.errors import ConfigError
from sortkd_cache.options import check_fields, opt

pytestmark = pytest.mark.fast


@dataclass(frozen=True)
class Throwaway:
    keep: Optional[int] = opt(None, "how many", ge=1)  # noqa: UP045 (the old spelling is checked too)
    limit: int | None = opt(None, "at most", le=10)
    out: Path = opt(Path("runs"), "where")  # noqa: RUF009
    mode: Literal["fast", "exact"] = opt("fast", "how")
    ids: tuple[int, ...] = opt((), "which")

    def __post_init__(self) -> None:
        check_fields(self)


def test_good_values_are_canonicalised() -> None:
    cfg = Throwaway(keep=3, out="elsewhere", mode="exact", ids=[1, 2])  # type: ignore[arg-type]
    assert cfg == Throwaway(keep=3, out=Path("elsewhere"), mode="exact", ids=(1, 2))
    assert isinstance(cfg.out, Path) and Throwaway().keep is None


@pytest.mark.parametrize(
    ("over", "line"),
    [
        ({"keep": "3"}, "--keep expects an integer, got '3' (str)"),
        ({"keep": True}, "--keep expects an integer, got True (bool)"),
        ({"keep": 0}, "--keep must be an integer >= 1, got 0"),
        ({"limit": 11}, "--limit must be an integer <= 10, got 11"),
        ({"out": 5}, "--out expects a path, got 5 (int)"),
        ({"out": ""}, "--out expects a path, got '' (str)"),
        ({"out": None}, "--out is missing (required; no value given)"),
        ({"mode": "slow"}, "unknown --mode 'slow'; known: fast, exact"),
        ({"ids": [1, "2"]}, "--ids expects a list of integers, got [1, '2'] (list)"),
    ],
)
def test_bad_values_are_one_line_naming_them(over: dict[str, object], line: str) -> None:
    with pytest.raises(ConfigError) as info:
        Throwaway(**over)  # type: ignore[arg-type]
    assert str(info.value) == line


@click.group(cls=SortKDGroup)
def throwaway() -> None:
    """A command generated from the throwaway configuration."""


@throwaway.command("go")
@config_options(Throwaway)
def go(**kw: object) -> None:
    click.echo(repr(Throwaway(**kw)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--keep", "0"], "error: --keep must be an integer >= 1, got 0"),
        (["--mode", "slow"], "error: unknown --mode 'slow'; known: fast, exact"),
        (["--limit", "12"], "error: --limit must be an integer <= 10, got 12"),
    ],
)
def test_generated_options_exit_2_with_one_line(args: list[str], line: str) -> None:
    done = CliRunner().invoke(throwaway, ["go", *args])
    assert done.exit_code == 2, (done.stdout, done.stderr)
    assert done.stderr.strip().splitlines() == [line]


def test_generated_options_take_good_values() -> None:
    done = CliRunner().invoke(throwaway, ["go", "--out", "x", "--keep", "2", "--mode", "exact"])
    assert done.exit_code == 0, done.stderr
    assert "keep=2, limit=None, out=PosixPath('x'), mode='exact', ids=()" in done.stdout
