"""Wall time of commands that need no model (`info`, `list`, `verify`, `report`, `--help`):
several builds of the CLI, interleaved in one run.

Each command runs as a fresh process of each build, A, B, C, A, B, C, ... (``--repeats``
rounds); the medians, and each build's ratio to the first, are printed as one JSON object. A
build is a ``sortkd-cache`` console script (``--build LABEL=SCRIPT``, repeated, the baseline
first): the main checkout's and a branch's, or one Python run on two source trees, so every
build sees the same machine load.

    python benchmarks/bench_cli_startup.py --build before=/tmp/old/sortkd-cache \\
        --build after=.venv/bin/sortkd-cache [--store STORE] [--repeats 7]

Without ``--store`` a small dense store is dumped first (``fake:96:10:8``, random resnet8,
with the first build); ``report`` reads 10 run directories written as ``train`` writes them
(``bench_report.write_runs``), printing its tables (no ``--out``).
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
from bench_report import write_runs

COMMANDS = {
    "info": ["info", "{store}"],
    "verify": ["verify", "{store}"],
    "list": ["list"],
    "list models": ["list", "models"],
    "list datasets": ["list", "datasets"],
    "list losses": ["list", "losses"],
    "report": ["report", "{runs}"],
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


def _builds(given: list[str]) -> dict[str, str]:
    builds = dict(b.split("=", 1) for b in given)
    if len(builds) < 2 or len(builds) != len(given):
        raise SystemExit("give two or more --build LABEL=SCRIPT with distinct labels")
    return builds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="append", required=True, help="LABEL=SCRIPT")
    parser.add_argument("--store", default=None)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    builds = _builds(args.build)
    first = next(iter(builds))
    load = [os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or _store(builds[first], Path(tmp))  # a store every build reads
        write_runs(Path(tmp) / "runs", 10)
        times: dict[str, dict[str, list[float]]] = {c: {b: [] for b in builds} for c in COMMANDS}
        for _ in range(args.repeats):
            for name, template in COMMANDS.items():
                cmd = [a.format(store=store, runs=Path(tmp) / "runs") for a in template]
                for label, cli in builds.items():
                    times[name][label].append(_once(cli, cmd))
            load.append(os.getloadavg())
    medians = {c: {b: statistics.median(t) for b, t in per.items()} for c, per in times.items()}
    result = {
        "bench": "cli_startup",
        "machine": machine(),
        "builds": builds,
        "load_average_1min": [round(x[0], 2) for x in load],
        "repeats": args.repeats,
        "seconds": times,
        "medians": medians,
        "ratio_to_first": {
            c: {b: m[b] / m[first] for b in builds if b != first} for c, m in medians.items()
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
