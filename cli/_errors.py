"""Map failures to exit codes: bad input -> 2 with one line, anything else -> 1.

A command that ran but did not do all it was asked exits with its own documented code:
``sweep`` exits :data:`EXIT_MEMBERS_FAILED` (3) when any member failed (docs/cli.md)."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import click

from sortkd_cache.errors import SortKDError

__all__ = ["EXIT_MEMBERS_FAILED", "SortKDGroup", "fail"]

#: ``sweep``: it ran to its end, but some members failed (diverged); the others finished.
EXIT_MEMBERS_FAILED = 3


def fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _usage_line(exc: click.UsageError) -> str:
    """Click's usage error as one line, with where to find the command's usage."""
    message = " ".join(exc.format_message().split())
    if exc.ctx is None:
        return message
    return f"{message} (see '{exc.ctx.command_path} {exc.ctx.help_option_names[-1]}')"


class SortKDGroup(click.Group):
    """A click group that reports :class:`SortKDError` as one line and exit code 2.

    A usage error (an unknown option, a missing argument, a value click cannot parse) is one
    ``error:`` line too, ending with a hint: ``(see 'sortkd-cache CMD --help')``."""

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            fail(_usage_line(exc), exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            fail("aborted", 1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SortKDError as exc:
            fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 2)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except Exception as exc:
            if os.environ.get("SORTKD_DEBUG") == "1":
                traceback.print_exc()
            msg = str(exc).splitlines()[0] if str(exc) else ""
            fail(f"{type(exc).__name__}: {msg} (set SORTKD_DEBUG=1 for a traceback)", 1)
        return None
