"""Defaults agree across commands (issue 29, item 5): an option name that two commands share
has the same default and type in both, unless docs/cli.md lists it, with why, under
"Options whose default differs between commands"; the list names no option that agrees."""

from __future__ import annotations

import re
from pathlib import Path

import click

from sortkd_cache.cli.main import all_commands

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
SECTION = "## Options whose default differs between commands"


def _signatures() -> dict[str, dict[str, tuple[object, str, bool]]]:
    """option string -> command -> (default, type, repeatable); a flag's unset default is
    False, as click reads it."""
    out: dict[str, dict[str, tuple[object, str, bool]]] = {}
    for name, cmd in sorted(all_commands().items()):
        for p in cmd.params:
            if not isinstance(p, click.Option):
                continue
            default = p.default if p.default is not None or not p.is_flag else False
            default = False if p.is_flag and not isinstance(default, bool) else default
            for o in (*p.opts, *p.secondary_opts):
                out.setdefault(o, {})[name] = (default, p.type.name, p.multiple)
    return out


def _documented() -> set[str]:
    text = DOCS.read_text()
    assert SECTION in text, f"docs/cli.md lacks the section {SECTION!r}"
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(--[a-z0-9-]+)`", body, flags=re.M))


def _differing() -> dict[str, dict[str, tuple[object, str, bool]]]:
    return {o: per for o, per in _signatures().items() if len(set(per.values())) > 1}


def test_shared_options_agree_unless_documented() -> None:
    undocumented = {o: per for o, per in _differing().items() if o not in _documented()}
    assert not undocumented, f"give these one default and type, or document why: {undocumented}"


def test_documented_differences_are_real() -> None:
    stale = _documented() - set(_differing())
    assert not stale, f"docs/cli.md lists options whose defaults agree now: {sorted(stale)}"


def test_the_generated_commands_share_train_s_declarations() -> None:
    """sweep, verify and run take --threads, --device, --seed and --storage-option from the
    same fields as train (one declaration each), so their help and bounds are train's."""
    sig = _signatures()
    for option in ("--threads", "--storage-option", "--no-progress", "--seed"):
        commands = sig[option]
        assert len(commands) >= 3, (option, commands)
        assert len(set(commands.values())) == 1, (option, commands)
    assert sig["--device"]["verify"] == sig["--device"]["train"] == sig["--device"]["sweep"]
