"""Issue 28 item 8: the examples are tested (tests/cli/test_examples.py parses every one).

The probe: ``run --help`` gave ``sortkd-cache run digits_demo --out demo_out`` as "the `make
demo` recipe", but ``make demo`` runs digits100_demo into demo_out, so following the help
overwrote the demo's results with another recipe's. The help's example must be the
Makefile's own command (recipe and folder), and every line of the help must parse.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from sortkd_cache.testing import invoke

ROOT = Path(__file__).resolve().parents[2]


def test_run_help_names_the_make_demo_recipe() -> None:
    make = (ROOT / "Makefile").read_text()
    demo = re.search(r"^demo:.*\n\t.*sortkd-cache run (\S+) --out (\S+)", make, re.M)
    assert demo is not None, "the Makefile's demo target does not run a recipe"
    recipe, out = Path(demo.group(1)).stem, demo.group(2)
    text = invoke("run", "--help", terminal_width=200).stdout
    lines = [line for line in text.splitlines() if "make demo" in line]
    assert lines, "run --help has no `make demo` example"
    for line in lines:
        argv = shlex.split(line, comments=True)
        assert argv[:2] == ["sortkd-cache", "run"], line
        assert Path(argv[2]).stem == recipe, f"run --help: `{line.strip()}` is not {recipe}"
        assert argv[argv.index("--out") + 1] == out, f"run --help: `{line.strip()}` not {out}"
