"""`train` step rate on the CPU: this checkout against a baseline tree, interleaved.

Each run is a fresh ``sortkd-cache train`` process (one torch thread) on the same cached KD
store; its rate is optimizer steps per second over the epochs after the first (the
``seconds`` of metrics.jsonl: the training pass, evaluation excluded). A and B alternate
(A, B, A, B, ...) and the medians are compared.

    python benchmarks/bench_engine.py --baseline DIR [--repeats 3] [--json OUT]

``DIR``: another checkout of the project (e.g. ``git archive <commit>``, with
``sortkd_cache/pipelines`` and ``sortkd_cache/cli`` linked to its ``pipelines`` and ``cli``),
put first on ``PYTHONPATH`` for the baseline runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine
from bench_sweep import _store

#: (name, dataset of the store, teacher, student, epochs)
CASES = [
    ("digits_cnn_s on digits", "digits", "digits_cnn_l", "digits_cnn_s", 4),
    ("resnet8 on fake:512:100:32", "fake:512:100:32", "resnet8", "resnet8", 3),
]


def _rate(tree: str | None, store: Path, student: str, epochs: int, out: Path) -> float:
    env = {**os.environ, "SORTKD_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    if tree is not None:
        env["PYTHONPATH"] = tree
    cmd = [
        sys.executable, "-m", "sortkd_cache.cli", "train", "--cache", str(store),
        "--student", student, "--loss", "kd", "--logits", "sort", "--epochs", str(epochs),
        "--milestones", "", "--batch-size", "64", "--device", "cpu", "--no-progress",
        "--out", str(out), "--overwrite",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, env=env, cwd=out.parent, stdout=subprocess.DEVNULL)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return _steps(store) * (len(rows) - 1) / sum(r["seconds"] for r in rows[1:])


def _steps(store: Path) -> int:
    """Steps an epoch at batch 64 (a last batch of one sample is dropped)."""
    import sortkd_cache as sk

    n = sk.open_store(str(store)).num_samples
    return n // 64 + (1 if n % 64 > 1 else 0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    out: dict[str, Any] = {"machine": machine(), "cases": {}}
    for name, spec, teacher, student, epochs in CASES:
        store = _store(root, spec, teacher, 2, ("sort",))
        rates: dict[str, list[float]] = {"baseline": [], "this": []}
        for _ in range(args.repeats):
            for label, tree in (("baseline", args.baseline), ("this", None)):
                run = root / f"{label}-{student}"
                rates[label].append(_rate(tree, store, student, epochs, run))
        med = {k: statistics.median(v) for k, v in rates.items()}
        out["cases"][name] = {"steps_per_s": rates, "median": med,
                              "this_over_baseline": med["this"] / med["baseline"]}  # fmt: skip
        print(name, json.dumps(out["cases"][name]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
