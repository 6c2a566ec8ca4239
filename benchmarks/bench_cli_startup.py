"""Wall time of commands that need no model (`info`, `list`, `verify`, `--help`): two builds
of the CLI, interleaved in one run.

Each command runs as a fresh process of each build, A, B, A, B, ... (``--repeats`` rounds);
the medians and the ratio B / A are printed as one JSON object. A build is the ``sortkd-cache``
console script of an environment (``--before`` and ``--after``, e.g. the main checkout's venv
and a branch's), so "before" and "after" see the same machine load.

    python benchmarks/bench_cli_startup.py --before /work/main/.venv/bin/sortkd-cache \\
        --after .venv/bin/sortkd-cache --store STORE [--repeats 7]

Without ``--store`` a small dense store is dumped first (``fake:96:10:8``, random resnet8).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine

COMMANDS = {
    "info": ["info", "{store}"],
    "list": ["list"],
    "list losses": ["list", "losses"],
    "verify": ["verify", "{store}"],
    "--help": ["--help"],
}


def _env() -> dict[str, str]:
    return {**os.environ, "SORTKD_NO_PROGRESS": "1"}


def _once(cli: str, args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([cli, *args], check=True, env=_env(), stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _store(cli: str, where: Path) -> str:
    out = where / "s.zarr"
    dump = [cli, "dump", "--dataset", "fake:96:10:8", "--teacher", "resnet8", "--teacher-init",
            "random", "--views", "2", "--chunk-samples", "48", "--device", "cpu", "--out",
            str(out)]  # fmt: skip
    subprocess.run(dump, check=True, env=_env(), stdout=subprocess.DEVNULL)
    return str(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="console script of the baseline")
    parser.add_argument("--after", required=True, help="console script of the change")
    parser.add_argument("--store", default=None)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or _store(args.before, Path(tmp))  # a store both builds read
        times: dict[str, dict[str, list[float]]] = {
            name: {"before": [], "after": []} for name in COMMANDS
        }
        for _ in range(args.repeats):
            for name, template in COMMANDS.items():
                cmd = [a.format(store=store) for a in template]
                for build in ("before", "after"):
                    cli = args.before if build == "before" else args.after
                    times[name][build].append(_once(cli, cmd))
    result = {
        "bench": "cli_startup",
        "machine": machine(),
        "load_average": os.getloadavg(),
        "repeats": args.repeats,
        "seconds": times,
        "medians": {
            name: {
                "before": statistics.median(t["before"]),
                "after": statistics.median(t["after"]),
                "ratio": statistics.median(t["after"]) / statistics.median(t["before"]),
            }
            for name, t in times.items()
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
