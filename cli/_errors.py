"""Map failures to exit codes: bad input -> 2 with one line, anything else -> 1."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import click

from sortkd_cache.errors import SortKDError

__all__ = ["SortKDGroup", "fail"]


def fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class SortKDGroup(click.Group):
    """A click group that reports :class:`SortKDError` as one line and exit code 2.

    Usage errors keep click's usage and hint lines, and end with the ``error:`` line (the
    last line printed, in the same form as every other error)."""

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
            if exc.ctx is not None:
                cmd = exc.ctx.command_path
                click.echo(exc.ctx.get_usage(), err=True)
                click.echo(f"Try '{cmd} {exc.ctx.help_option_names[-1]}' for help.", err=True)
            fail(exc.format_message(), exc.exit_code)
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
