"""Run every stage's benchmark and rewrite BENCHMARKS.md (`make bench`).

Each benchmark runs in its own process and prints one JSON object; this script collects them
into bench_out/<device>.json and renders BENCHMARKS.md with the machine, the date and every
ratio. GPU figures come from the same scripts run on a GPU machine (`--device-tag gpu`); the
last GPU results are kept in benchmarks/results/gpu.json and rendered beside the CPU ones.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCHES = [
    ("sort kernel vs per-batch formulation", "bench_sort_kernel.py"),
    ("sort stage vs plain read-and-rewrite", "bench_sort_stage.py"),
    ("dump vs teacher forward only", "bench_dump.py"),
    ("train epoch: cached KD vs CE-only vs online teacher", "bench_train.py"),
    ("sparse top-K stores: bytes, fidelity, students, throughput", "bench_sparse.py"),
    ("sparse top-K stores: students from dense vs top-10, two regimes", "bench_sparse_students.py"),
    ("teacher precision: bf16 vs fp32", "bench_imagenet_precision.py"),
    ("ImageNet-like JPEG folder: dump vs ImageFolder+DataLoader", "bench_imagenet_dump.py"),
    ("ImageNet-like JPEG folder: dump peak RSS by block size", "bench_imagenet_dump_rss.py"),
    ("ImageNet-like JPEG folder: train epoch vs ImageFolder+DataLoader", "bench_imagenet_train.py"),
    ("train rank peak RSS: whole-view vs streamed soft labels", "bench_memory_stream.py"),
]
KEYWORDS = (
    "ratio",
    "speedup",
    "speed_up",
    "per_second",
    "saving",
    "mean_kl",
    "bytes_per",
    "agreement",
    "max_abs_diff",
    "rss",
    "soft_label_mib",
    "difference",
    "label_outside",
)


def run_bench(script: str, quick: bool) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / script)] + (["--quick"] if quick else [])
    env = dict(os.environ, SORTKD_NO_PROGRESS="1", PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"], "wall_seconds": wall}
    out = json.loads(proc.stdout)
    out["wall_seconds"] = round(wall, 1)
    return out


def _figures(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "machine":
                continue
            rows += (
                _figures(v, f"{prefix}{k}.")
                if isinstance(v, dict | list)
                else ([(prefix + k, v)] if any(w in prefix + k for w in KEYWORDS) else [])
            )
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            rows += _figures(v, f"{prefix}{i}.")
    return rows


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def render(results: dict[str, dict[str, Any]], title: str) -> str:
    meta = results.get("_meta", {})
    lines = [
        f"## {title}",
        "",
        f"Machine: {json.dumps(meta.get('machine', {}))}  ",
        f"Date: {meta.get('date', '?')}; every ratio comes from one run of `make bench` "
        "(medians of repeats inside it).",
        "",
    ]
    for name, script in BENCHES:
        res = results.get(script)
        if res is None:
            continue
        lines += [f"### {name} (`benchmarks/{script}`)", ""]
        if "error" in res:
            lines += [f"failed: {res['error']}", ""]
            continue
        lines += ["| figure | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in _figures(res)]
        lines += [
            "",
            "<details><summary>full output</summary>",
            "",
            "```json",
            json.dumps(res, indent=1),
            "```",
            "</details>",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="BENCHMARKS.md")
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--device-tag", default="cpu", help="cpu or gpu: which results file to write")
    ap.add_argument("--only", nargs="*", default=None, help="script names to run")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from _common import machine

    store_dir = HERE / "results"
    previous = store_dir / f"{args.device_tag}.json"
    results: dict[str, Any] = (
        json.loads(previous.read_text()) if args.only and previous.exists() else {}
    )  # --only refreshes some benchmarks and keeps the others' last results
    results["_meta"] = {"machine": machine(), "date": dt.date.today().isoformat()}
    for _name, script in BENCHES:
        if args.only and script not in args.only:
            continue
        print(f"running {script} ...", file=sys.stderr, flush=True)
        results[script] = run_bench(script, args.quick)
        print(f"  done in {results[script]['wall_seconds']} s", file=sys.stderr, flush=True)
    store_dir.mkdir(exist_ok=True)
    (store_dir / f"{args.device_tag}.json").write_text(json.dumps(results, indent=1))
    sections = []
    for tag, title in (("cpu", "CPU"), ("gpu", "GPU")):
        path = store_dir / f"{tag}.json"
        if path.exists():
            sections.append(render(json.loads(path.read_text()), title))
    header = (
        (ROOT / "benchmarks" / "HEADER.md").read_text()
        if (ROOT / "benchmarks" / "HEADER.md").exists()
        else "# Benchmarks\n"
    )
    Path(args.out).write_text(header + "\n" + "\n".join(sections))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
