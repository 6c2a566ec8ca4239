"""Run every stage's benchmark and rewrite BENCHMARKS.md (`make bench`).

Each benchmark runs in its own process and prints one JSON object; this script collects them
into benchmarks/results/<device>.json and renders BENCHMARKS.md: benchmarks/HEADER.md, then
one table per stage with a column per device (the CPU figures, and the last GPU results kept in
benchmarks/results/gpu.json from the same scripts run with `--device-tag gpu`). The figures a
rerun replaces are appended to docs/benchmarks-history.md first, so no run is lost.
`--render-only` re-renders from the stored results without running anything.
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
    ("dump with a timm teacher vs a plain loop of timm forwards", "bench_timm_dump.py"),
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


TAGS = (("cpu", "CPU"), ("gpu", "GPU"))
HISTORY = ROOT / "docs" / "benchmarks-history.md"


def _stage_table(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """One table: a row per figure, a column per device that ran the stage."""
    cells: dict[str, dict[str, str]] = {}
    for title, res in runs:
        if "error" in res:
            cells.setdefault("failed", {})[title] = str(res["error"])
        for k, v in _figures(res):
            cells.setdefault(k, {})[title] = _fmt(v)
    titles = [title for title, _ in runs]
    lines = ["| figure | " + " | ".join(titles) + " |", "|---" * (len(titles) + 1) + "|"]
    for k, row in cells.items():
        lines.append(f"| {k} | " + " | ".join(row.get(t, "-") for t in titles) + " |")
    return [*lines, ""]


def _machine_line(title: str, results: dict[str, Any]) -> str:
    meta = results.get("_meta", {})
    return f"- {title}: {json.dumps(meta.get('machine', {}))}, {meta.get('date', '?')}"


def render(by_tag: dict[str, dict[str, Any]]) -> str:
    """The generated part of BENCHMARKS.md: the machines, then one table per stage."""
    present = [(tag, title) for tag, title in TAGS if tag in by_tag]
    lines = ["## Current figures", "", "Machines and dates (outputs: benchmarks/results/):", ""]
    lines += [_machine_line(title, by_tag[tag]) for tag, title in present] + [""]
    for name, script in BENCHES:
        runs = [(title, by_tag[tag][script]) for tag, title in present if script in by_tag[tag]]
        if runs:
            lines += [f"### {name} (`benchmarks/{script}`)", "", *_stage_table(runs)]
    return "\n".join(lines)


def archive(previous: dict[str, Any], scripts: list[str], title: str) -> None:
    """Append the figures of `previous` that a rerun of `scripts` replaces to the history."""
    old = [s for s in scripts if s in previous]
    if not old:
        return
    date = previous.get("_meta", {}).get("date", "?")
    lines = [f"## {title}, {date} (replaced by a later `make bench`)", ""]
    lines += [_machine_line(title, previous), ""]
    for name, script in BENCHES:
        if script in old:
            lines += [f"### {name} (`benchmarks/{script}`)", ""]
            lines += _stage_table([(title, previous[script])])
    text = HISTORY.read_text() if HISTORY.exists() else "# Benchmark history\n"
    HISTORY.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines))


def write_markdown(out: Path) -> None:
    store_dir = HERE / "results"
    by_tag = {
        tag: json.loads((store_dir / f"{tag}.json").read_text())
        for tag, _ in TAGS
        if (store_dir / f"{tag}.json").exists()
    }
    header_path = HERE / "HEADER.md"
    header = header_path.read_text() if header_path.exists() else "# Benchmarks\n"
    out.write_text(header.rstrip("\n") + "\n\n" + render(by_tag))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="BENCHMARKS.md")
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--device-tag", default="cpu", help="cpu or gpu: which results file to write")
    ap.add_argument("--only", nargs="*", default=None, help="script names to run")
    ap.add_argument("--render-only", action="store_true", help="re-render, run nothing")
    args = ap.parse_args()
    if not args.render_only:
        run_and_store(args.device_tag, args.only, args.quick)
    write_markdown(Path(args.out))
    print(f"wrote {args.out}", file=sys.stderr)


def run_and_store(tag: str, only: list[str] | None, quick: bool) -> None:
    sys.path.insert(0, str(HERE))
    from _common import machine

    path = HERE / "results" / f"{tag}.json"
    previous: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    # --only refreshes some benchmarks and keeps the others' last results
    results: dict[str, Any] = dict(previous) if only else {}
    results["_meta"] = {"machine": machine(), "date": dt.date.today().isoformat()}
    scripts = [s for _name, s in BENCHES if not only or s in only]
    for script in scripts:
        print(f"running {script} ...", file=sys.stderr, flush=True)
        results[script] = run_bench(script, quick)
        print(f"  done in {results[script]['wall_seconds']} s", file=sys.stderr, flush=True)
    if not quick:
        archive(previous, scripts, dict(TAGS).get(tag, tag))
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
