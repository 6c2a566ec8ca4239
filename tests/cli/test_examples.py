"""Issue 28 item 8: the examples are tested.

Every ``sortkd-cache ...`` example in a command's ``--help`` (its docstring and epilog) and in
README.md and docs/*.md (fenced ``bash``/``sh``/``console`` blocks and indented code lines)
is parsed with the real click command: a known command, known options, values of the right
type and among the choices, no stray argument, nothing required left out (except where the
example elides with ``...``). A failure names the file and line (or the command's help) and
the example, so a doc edit that breaks one says which line to fix.

The cheap ones also run, on tiny stores, from a scratch directory: ``list``, ``info``,
``verify`` (no ``--recompute``), ``sort`` and ``copy`` examples on local stores (none of: a
remote URL, ``--data-root``, ``--dataset`` other than digits, a scheduler, a sweep). Each
store an example reads is a tiny one under the example's own name: 100 classes where the name
says CIFAR-100 (``c100``), else digits.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import tomllib

from sortkd_cache.cli.main import all_commands, cli
from sortkd_cache.testing import invoke

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_COMMAND = re.compile(r"^(?:\$\s+)?(?:[A-Z_][A-Z0-9_]*=\S+\s+)*(sortkd-cache\s.*)$")
_FENCES = ("bash", "sh", "shell", "console", "")


def _joined(lines: list[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """(where, text) of each logical line (a trailing backslash continues it)."""
    parts: list[str] = []
    where = ""
    for here, line in lines:
        where = where or here
        text = line.rstrip()
        parts.append(text[:-1].strip() if text.endswith("\\") else text.strip())
        if not text.endswith("\\"):
            yield where, " ".join(parts)
            parts, where = [], ""
    if parts:
        yield where, " ".join(parts)


def _commands(lines: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for where, text in _joined(lines):
        match = _COMMAND.match(text)
        if match:
            out.append((where, match.group(1)))
    return out


def _doc_lines(path: Path) -> list[tuple[str, str]]:
    """The lines of the file's shell code: fenced shell blocks and indented code lines that
    start an example (with their continuations)."""
    name = path.relative_to(ROOT).as_posix()
    picked: list[tuple[str, str]] = []
    fence: str | None = None
    continued, plugin = False, ""
    for no, line in enumerate(path.read_text().splitlines(), 1):
        opening = re.match(r"^\s*```\s*(\w*)", line)
        if opening:
            fence = opening.group(1) if fence is None else None
            continued, plugin = False, ""
            continue
        installs = re.match(r"^\s*pip install (?:-e )?(examples/\S+)", line)
        plugin = installs.group(1) if installs and fence is not None else plugin
        indented = fence is None and (line.startswith("    ") and "sortkd-cache" in line)
        if (fence is not None and fence in _FENCES) or indented or continued:
            picked.append((f"{name}:{no}" + (f" (with {plugin})" if plugin else ""), line))
            continued = line.rstrip().endswith("\\")
    return picked


def _help_lines() -> list[tuple[str, str]]:
    picked = []
    for name, cmd in sorted(all_commands().items()):
        for text in (cmd.help or "", cmd.epilog or ""):
            picked += [(f"`sortkd-cache {name} --help`", line) for line in text.splitlines()]
    picked += [("`sortkd-cache --help`", line) for line in (cli.help or "").splitlines()]
    return picked


def examples() -> list[tuple[str, str]]:
    found = _commands(_help_lines())
    for path in DOCS:
        found += _commands(_doc_lines(path))
    return found


EXAMPLES = examples()


_OPERATORS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1"}


def words(text: str) -> list[str]:
    """The example's words up to the first shell operator (a pipe into ``jq``, ...), less
    its comment."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    out = []
    for word in lexer:
        if word in _OPERATORS:
            break
        out.append(word)
    return out


def parse(text: str) -> str | None:
    """Why the example does not parse with the real command, or None when it does."""
    try:
        argv = words(text)[1:]
    except ValueError as exc:
        return f"not shell words ({exc})"
    elided = "..." in argv
    argv = [a for a in argv if a != "..."]
    if not argv:
        return "no command"
    top = click.Context(cli, info_name="sortkd-cache")
    if argv[0].startswith("-"):
        return None if argv in (["--version"], ["--help"], ["-h"]) else f"unknown {argv[0]}"
    cmd = cli.get_command(top, argv[0])
    if cmd is None:
        return f"unknown command {argv[0]!r}; known: {', '.join(sorted(all_commands()))}"
    try:
        ctx = cmd.make_context(argv[0], argv[1:], parent=top)
    except click.MissingParameter as exc:
        return None if elided else exc.format_message()
    except click.exceptions.Exit:
        return None  # --help
    except click.ClickException as exc:
        return exc.format_message()
    return _value_problem(cmd, ctx)


def _lists() -> dict[str, tuple[str, ...]]:
    """The comma-separated options whose items come from a registry (``sweep``'s grid)."""
    from sortkd_cache.losses import LOSSES
    from sortkd_cache.sorting import LOGIT_KINDS

    return {"losses": tuple(LOSSES.names()), "kinds": LOGIT_KINDS}


def _value_problem(cmd: click.Command, ctx: click.Context) -> str | None:
    """A value given on the line that its option's registry does not know: the choices of a
    configuration field, a dataset SPEC, an augmentation recipe, a sweep's grid items."""
    from sortkd_cache.augment import get_recipe
    from sortkd_cache.datasets import parse_dataset_spec
    from sortkd_cache.errors import SortKDError

    lists = _lists()
    for param in cmd.params:
        value = ctx.params.get(param.name or "")
        given = ctx.get_parameter_source(param.name or "") == click.core.ParameterSource.COMMANDLINE
        if not given or value is None or not isinstance(param, click.Option):
            continue
        flag = param.opts[0]
        choices_of = getattr(param, "choices_of", None)
        allowed = tuple(choices_of()) if choices_of is not None else lists.get(param.name or "")
        items = str(value).split(",") if param.name in lists else [value]
        bad = [v for v in items if allowed is not None and v not in allowed]
        if bad:
            return f"{flag} {bad[0]!r} is not one of {', '.join(map(str, allowed or ()))}"
        try:
            if param.name == "dataset":
                parse_dataset_spec(str(value))
            elif param.name == "augment":
                get_recipe(str(value))
        except SortKDError as exc:
            return f"{flag}: {exc}"
    return None


def test_the_examples_are_found() -> None:
    """Examples from every command's help, the README and the docs (a silent extractor would
    pass everything)."""
    wheres = {where.split(":")[0] for where, _ in EXAMPLES}
    for name in ("dump", "sort", "train", "verify", "copy", "sweep", "run", "info"):
        assert f"`sortkd-cache {name} --help`" in wheres, name
    assert {"README.md", "docs/sharing.md", "docs/sparse.md"} <= wheres
    assert len(EXAMPLES) >= 60


PLAIN = [(w, t) for w, t in EXAMPLES if "(with examples/" not in w]
WITH_PLUGIN = [(w, t) for w, t in EXAMPLES if "(with examples/" in w]


@pytest.mark.parametrize(("where", "text"), PLAIN, ids=[w for w, _ in PLAIN])
def test_the_example_parses(where: str, text: str) -> None:
    problem = parse(text)
    assert problem is None, f"{where}: the example `{text}` does not parse: {problem}"


def test_the_examples_with_a_plugin_parse_with_it(tmp_path: Path) -> None:
    """Examples in a block that first installs a package of ``examples/`` (its options
    exist only then): parsed in a Python that sees it installed (the way tests/plugins
    installs it: its source and a ``.dist-info`` on the path)."""
    for package in sorted({w.split("(with ")[1].rstrip(")") for w, _ in WITH_PLUGIN}):
        found = [(w, t) for w, t in WITH_PLUGIN if f"(with {package})" in w]
        project = tomllib.loads((ROOT / package / "pyproject.toml").read_text())["project"]
        info = tmp_path / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n")
        groups = project["entry-points"].items()
        (info / "entry_points.txt").write_text(
            "".join(f"[{g}]\n" + "".join(f"{k} = {v}\n" for k, v in e.items()) for g, e in groups)
        )
        code = (
            "import json, runpy, sys; parse = runpy.run_path(sys.argv[1])['parse']; "
            "print(json.dumps([parse(t) for t in json.loads(sys.argv[2])]))"
        )
        paths = [str(ROOT / package / "src"), str(tmp_path)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        args = [sys.executable, "-c", code, __file__, json.dumps([t for _, t in found])]
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
        problems = json.loads(done.stdout.splitlines()[-1])
        for (where, text), problem in zip(found, problems, strict=True):
            assert problem is None, f"{where}: the example `{text}` does not parse: {problem}"


def test_a_broken_example_is_named() -> None:
    assert parse("sortkd-cache verify x.zarr --no-such-option") is not None
    assert "frob" in (parse("sortkd-cache frob x") or "")
    assert "'bogus'" in (parse("sortkd-cache sort x.zarr --method bogus") or "")
    assert parse("sortkd-cache train --cache x.zarr --epochs many --out r") is not None
    assert parse("sortkd-cache dump ... --topk 10 --out y.zarr") is None  # elided


_CHEAP = ("list", "info", "verify", "sort", "copy")
_COSTLY = re.compile(
    r"://|--data-root|--recompute|--scheduler|--storage-option|--sweep|cifar|imagenet"
)


def _cheap(text: str) -> bool:
    argv = words(text)
    return argv[1] in _CHEAP and "..." not in argv and not _COSTLY.search(text)


CHEAP = [(w, t) for w, t in EXAMPLES if parse(t) is None and _cheap(t)]


@pytest.fixture(scope="module")
def tiny_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """4 views of a random teacher, raw + sort (seconds to make): ``digits`` (10 classes),
    and ``digits100:2`` (100 classes, 200 samples) for the examples named after CIFAR-100."""
    from sortkd_cache.testing import dump_and_sort

    root = tmp_path_factory.mktemp("examples")
    return {
        "digits": dump_and_sort(root / "d.zarr", "digits", 512, "digits_mlp", views=4),
        "c100": dump_and_sort(root / "c.zarr", "digits100:2", 64, "digits100_mlp", views=4),
    }


@pytest.mark.parametrize(("where", "text"), CHEAP, ids=[w for w, _ in CHEAP])
def test_the_cheap_example_runs(
    where: str,
    text: str,
    tiny_stores: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    # every path stays in the scratch directory: /shared/x and ~/x become shared/x and x
    argv = [a.lstrip("/").removeprefix("~/") for a in words(text)[1:]]
    reads = argv[1:2] if argv[0] in ("info", "verify", "sort", "copy") else []
    for name in reads:  # the store the example reads: a tiny one, under its name
        tiny_store = tiny_stores["c100" if "c100" in name else "digits"]
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".zip"):
            assert invoke("copy", str(tiny_store), str(target)).exit_code == 0
        else:
            shutil.copytree(tiny_store, target)
    if "--no-progress" not in argv and argv[0] in ("verify", "copy", "sort"):
        argv.append("--no-progress")
    result = invoke(*argv)
    assert result.exit_code == 0, (
        f"{where}: the example `{text}` exits {result.exit_code} on a tiny store: "
        f"{(result.stderr or result.stdout).strip()[-500:]}"
    )
