"""`sortkd-cache report` over 100 runs (synthetic run directories, 16 epochs each).

The runs are written the way ``train`` writes them (config.json from a real TrainConfig with
a provenance record, summary.json, metrics.jsonl), 10 variants (kd/dkd x raw/sort x two
learning rates, plus CE at both) x 10 seeds. Measured: the whole command as a fresh CLI
process (start-up included) and, in-process, its phases: finding and reading the runs,
building the tables and curves, rendering and writing report.html/.md/.json (the two PNG
figures). Medians of ``--repeats`` runs, each phase and the CLI interleaved.

    python benchmarks/bench_report.py [--repeats 5] [--runs 100]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine

CLI = [sys.executable, "-m", "sortkd_cache.cli"]
PROVENANCE = {
    "store_id": "5e1f0c0ffee0c0ffee0c0ffee0c0ffee",
    "teacher": {"arch": "digits100_cnn_l", "sha256": "sha256:" + "ab" * 32},
    "dataset": {"spec": "digits100:20", "fingerprint": "sha256:" + "cd" * 32},
}


def _variants() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for lr in (0.05, 0.1):
        out.append({"loss": "ce", "lr": lr})
        for loss in ("kd", "dkd"):
            for kind in ("raw", "sort"):
                out.append({"loss": loss, "logits": kind, "lr": lr})
    return out


def write_runs(root: Path, n: int) -> None:
    """``n`` finished run directories under ``root`` (variants x seeds)."""
    from sortkd_cache.pipelines.configs import TrainConfig

    variants = _variants()
    rng = random.Random(0)
    for i in range(n):
        v, seed = variants[i % len(variants)], i // len(variants)
        run = root / f"run{i:03d}"
        run.mkdir(parents=True)
        cfg = TrainConfig(student="digits100_mlp", cache="c.zarr", out=str(run), seed=seed,
                          epochs=16, milestones=(10, 14), **v)  # fmt: skip
        config = {**cfg.to_dict(), "provenance": PROVENANCE, "resolved": {"topk": None}}
        (run / "config.json").write_text(json.dumps(config, indent=2))
        rows = [
            {"epoch": e + 1, "loss": 3.0 / (e + 1) + rng.random() * 0.1,
             "test_top1": 60 + e + rng.random() * 5, "lr": cfg.lr, "seconds": 0.5}
            for e in range(16)
        ]  # fmt: skip
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        summary = {"final_test_top1": rows[-1]["test_top1"], "seconds": 8.0}
        (run / "summary.json").write_text(json.dumps(summary))


def _phases(root: Path, out: Path) -> dict[str, float]:
    from sortkd_cache.pipelines.report import build_report, find_runs, write_report

    t0 = time.perf_counter()
    runs, unfinished = find_runs([str(root)])
    t1 = time.perf_counter()
    data = build_report(runs, unfinished=unfinished, inputs=[str(root)])
    t2 = time.perf_counter()
    out.mkdir(exist_ok=True)
    write_report(out, data)
    t3 = time.perf_counter()
    return {"read_s": t1 - t0, "build_s": t2 - t1, "write_s": t3 - t2, "total_s": t3 - t0}


def _cli(root: Path, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, SORTKD_NO_PROGRESS="1")
    t0 = time.perf_counter()
    subprocess.run([*CLI, "report", str(root), "--out", str(out)], check=True, env=env,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="3 repeats")
    args = ap.parse_args()
    repeats = 3 if args.quick else args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        write_runs(root, args.runs)
        phases: list[dict[str, float]] = []
        cli: list[float] = []
        for k in range(repeats):
            phases.append(_phases(root, Path(tmp) / f"in{k}"))
            cli.append(_cli(root, Path(tmp) / "cli"))
        html = (Path(tmp) / "cli" / "report.html").stat().st_size
    med = {k: statistics.median(p[k] for p in phases) for k in phases[0]}
    print(json.dumps({
        "machine": machine(), "runs": args.runs, "variants": len(_variants()),
        "epochs": 16, "repeats": repeats, "cli_seconds": cli,
        "cli_median_s": statistics.median(cli),
        "in_process_median_s": med, "html_bytes": html,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
