"""`sortkd-cache sweep` against the same runs one after another (`train` per member).

Parts (each run as a fresh CLI process, A and B interleaved A, B, A, B..., medians):

* ``digits``: the demo grid (digits_cnn_s; ce, kd, dkd x raw, sort, swap x seeds 0, 1, 2:
  21 members) on a digits store of 8 views: wall time of one sweep against 21 `train` runs.
* ``resnet``: 8 resnet8x4 students (kd, dkd x raw, sort x seeds 0, 1) on a dense
  ``fake:N:100:32`` cache: student-images per second, sweep stacked and unstacked against
  8 `train` runs.
* ``rss``: peak RSS of a sweep process with N = 1, 4, 8, 16 members (digits_mlp, kd), per
  member.

    python benchmarks/bench_sweep.py [--quick] [--parts digits,resnet,rss] [--device cpu]

The stores' teachers are random (the timing does not depend on what they learnt).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
RSS = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"
)


def _env() -> dict[str, str]:
    return {**os.environ, "SORTKD_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}


def _timed(cmds: list[list[str]]) -> tuple[float, float]:
    """Wall seconds of ``cmds`` run one after another, and their CPU seconds (user + system
    of the processes: much less moved by other jobs' load than the wall time)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    for cmd in cmds:
        subprocess.run(cmd, check=True, env=_env(), stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _store(root: Path, spec: str, teacher: str, views: int, methods: tuple[str, ...]) -> Path:
    from sortkd_cache.pipelines.dump import DumpConfig, dump
    from sortkd_cache.pipelines.sort import SortConfig, sort_store

    out = root / f"{spec.replace(':', '_')}-v{views}.zarr"
    dump(
        DumpConfig(
            dataset=spec, teacher=teacher, teacher_init="random", views=views, out=str(out),
            progress=False, device="cpu",
        )
    )  # fmt: skip
    for method in methods:
        sort_store(SortConfig(store=str(out), method=method, progress=False, num_workers=1))
    return out


def members_of(grid: dict[str, list[Any]]) -> list[tuple[str, str, int]]:
    """The (loss, logits, seed) members of a sweep grid (``ce`` reads no logits: raw only)."""
    return [
        (loss, kind, seed)
        for loss in grid["loss"]
        for kind in (grid["logits"] if loss != "ce" else ["raw"])
        for seed in grid["seeds"]
    ]


def _compare(
    store: Path, out: Path, student: str, grid: dict[str, list[Any]], common: list[str],
    stacks: list[str], repeats: int,
) -> dict[str, list[float]]:  # fmt: skip
    """Interleaved timings: one sweep per stack mode, then the sequential train runs (wall
    seconds under each name, CPU seconds under ``NAME_cpu``, the 1-minute load average as each
    began under ``NAME_load``)."""
    members = members_of(grid)
    seq = [
        [*CLI, "train", "--cache", str(store), "--student", student, "--loss", loss,
         "--logits", kind, "--seed", str(seed), "--data-seed", "0", *common,
         "--out", str(out / f"seq-{loss}-{kind}-{seed}"), "--overwrite"]
        for loss, kind, seed in members
    ]  # fmt: skip
    times: dict[str, list[float]] = {}

    def timed(name: str, cmds: list[list[str]]) -> None:
        load = os.getloadavg()[0]
        wall, cpu = _timed(cmds)
        for key, value in ((name, wall), (f"{name}_cpu", cpu), (f"{name}_load", load)):
            times.setdefault(key, []).append(value)

    for _ in range(repeats):
        for stack in stacks:
            cmd = [
                *CLI, "sweep", "--cache", str(store), "--student", student,
                "--loss", ",".join(grid["loss"]), "--logits", ",".join(grid["logits"]),
                "--seeds", ",".join(map(str, grid["seeds"])), "--stack", stack, *common,
                "--out", str(out / f"sweep-{stack}"), "--overwrite", "--no-progress",
            ]  # fmt: skip
            timed(f"sweep_{stack}", [cmd])
        timed("sequential", seq)
    return times


def digits(root: Path, quick: bool, repeats: int, device: str) -> dict[str, Any]:
    store = _store(root, "digits", "digits_cnn_l", 8, ("sort", "swap"))
    epochs = 2 if quick else 16
    grid = {"loss": ["ce", "kd", "dkd"], "logits": ["raw", "sort", "swap"], "seeds": [0, 1, 2]}
    common = ["--epochs", str(epochs), "--milestones", "", "--batch-size", "64", "--device",
              device, "--no-progress"]  # fmt: skip
    times = _compare(store, root / "digits", "digits_cnn_s", grid, common, ["off"], repeats)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"members": 21, "epochs": epochs, "seconds": times, "median": med,
            "ratio_sweep_over_sequential": med["sweep_off"] / med["sequential"],
            "ratio_cpu": med["sweep_off_cpu"] / med["sequential_cpu"]}  # fmt: skip


RESNET_GRID = {"loss": ["kd", "dkd"], "logits": ["raw", "sort"], "seeds": [0, 1]}


def resnet(
    root: Path, quick: bool, repeats: int, device: str, n: int | None = None,
    grid: dict[str, list[Any]] | None = None, shape: str = "100:32",
) -> dict[str, Any]:  # fmt: skip
    """The resnet8x4 sweep (``grid``: 8 members unless told) on ``fake:n:shape`` (classes and
    image size), stacked and unstacked, against its members' ``train`` runs."""
    n = n or (128 if quick else 512)
    grid = grid or RESNET_GRID
    store = _store(root, f"fake:{n}:{shape}", "resnet8", 2, ("sort",))
    common = ["--epochs", "1", "--milestones", "", "--batch-size", "64", "--device", device,
              "--no-progress"]  # fmt: skip
    times = _compare(store, root / "resnet", "resnet8x4", grid, common, ["on", "off"], repeats)
    members = len(members_of(grid))
    images = members * (n // 64) * 64
    walls = {k: v for k, v in times.items() if not k.endswith(("_cpu", "_load"))}
    rate = {k: images / statistics.median(v) for k, v in walls.items()}
    return {"members": members, "samples": n, "seconds": times, "student_images_per_s": rate,
            "speedup_stacked": rate["sweep_on"] / rate["sequential"],
            "speedup_unstacked": rate["sweep_off"] / rate["sequential"]}  # fmt: skip


def rss(root: Path, device: str) -> dict[str, Any]:
    store = _store(root, "digits", "digits_cnn_l", 2, ())
    out: dict[str, Any] = {}
    for n in (1, 4, 8, 16):
        cmd = [
            sys.executable, "-c", RSS, *CLI, "sweep", "--cache", str(store), "--student",
            "digits_mlp", "--loss", "kd", "--seeds", ",".join(map(str, range(n))), "--epochs",
            "1", "--milestones", "", "--device", device, "--no-progress", "--overwrite",
            "--out", str(root / f"rss-{n}"),
        ]  # fmt: skip
        proc = subprocess.run(cmd, check=True, env=_env(), capture_output=True, text=True)
        kib = int(proc.stdout.strip().splitlines()[-1])
        out[str(n)] = {"peak_rss_mib": kib / 1024, "per_member_mib": kib / 1024 / n}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--parts", default="digits,resnet,rss")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, help="Write the figures here too.")
    args = ap.parse_args()
    result: dict[str, Any] = {"machine": machine(), "quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        root = Path(tmp)
        for part in args.parts.split(","):
            if part == "digits":
                result["digits"] = digits(root, args.quick, args.repeats, args.device)
            elif part == "resnet":
                result["resnet"] = resnet(root, args.quick, args.repeats, args.device)
            elif part == "rss":
                result["rss"] = rss(root, args.device)
            print(json.dumps({part: result.get(part)}, indent=1), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
