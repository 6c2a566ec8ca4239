"""The GPU training benchmark: one command, one table (issue 27, item 6).

    python benchmarks/gpu_train.py                 # one GPU: under 8 minutes (budgeted)
    python benchmarks/gpu_train.py --smoke         # CPU, tiny sizes: checks that it runs

Parts, each on CIFAR-shaped ``fake`` data (``fake:N:100:32``; random teachers: the timing
does not depend on what they learnt):

* **train step rate**: ``resnet8x4`` and ``wrn_16_2`` at batch 64, cached KD (``sort``),
  in fp32, bf16, and bf16 + channels-last + ``torch.compile``: optimizer steps per second,
  the median over the epochs after the first (the first pays the warm-up and compilation);
* **CE against cached KD**: the same resnet8x4 run with ``--loss ce`` and ``--loss kd``
  (fp32): their step rates and the ratio (what reading the cache costs);
* **a sweep of 8** resnet8x4 (kd, dkd x raw, sort x seeds 0, 1; one epoch): student-images
  per second of one sweep stacked, one unstacked, and 8 ``train`` runs one after another
  (each a fresh CLI process, as a user runs them; from ``bench_sweep.py``);
* **dump throughput in bf16**: a ``resnet32x4`` teacher, samples per second.

Prints one Markdown table, a part's rows as soon as it ends (and ``--json PATH`` writes the
figures with the machine, rewritten after each part: a run cut short keeps them). Each
part is timed; a part that would start after ``--budget`` seconds is skipped and says so.
``--smoke`` runs every part's code once at tiny sizes on the CPU, without ``--compile`` (and
a sweep of 2, which still runs stacked, unstacked and one after another), in about 35 s of
CPU: the test suite runs it so that the script cannot rot.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine
from bench_sweep import RESNET_GRID, members_of
from bench_sweep import resnet as sweep_of_resnets


@dataclass(frozen=True)
class Sizes:
    """How big each part is: the GPU run's, or the smoke run's."""

    device: str
    samples: int  #: training samples (steps per epoch: samples // batch)
    classes: int
    image: int
    batch: int
    epochs: int  #: the first is dropped from the step rate
    sweep_samples: int
    dump_samples: int
    teacher: str
    compile: bool
    #: the sweep's members (loss x logits x seeds: 8 on a GPU, 2 in the smoke run, which
    #: still runs the stacked, unstacked and one-after-another paths once each)
    sweep_grid: dict[str, list[Any]]

    @property
    def sweep_part(self) -> str:
        return f"sweep of {len(members_of(self.sweep_grid))}"

    @property
    def spec(self) -> str:
        return f"fake:{self.samples}:{self.classes}:{self.image}"


GPU = Sizes("cuda", 8192, 100, 32, 64, 3, 8192, 20000, "resnet32x4", True, RESNET_GRID)
SMOKE = Sizes(
    "cpu", 64, 10, 16, 16, 2, 64, 64, "resnet8", False,
    {"loss": ["kd"], "logits": ["sort"], "seeds": [0, 1]},
)  # fmt: skip

VARIANTS: dict[str, dict[str, Any]] = {
    "fp32": {},
    "bf16": {"precision": "bf16"},
    "bf16+channels-last+compile": {"precision": "bf16", "channels_last": True, "compile": True},
}


def _store(root: Path, size: Sizes) -> Path:
    from sortkd_cache.pipelines.dump import DumpConfig, dump
    from sortkd_cache.pipelines.sort import SortConfig, sort_store

    out = root / "train.zarr"
    dump(
        DumpConfig(
            dataset=size.spec, teacher="resnet8", teacher_init="random", views=size.epochs,
            out=str(out), progress=False, device=size.device, batch_size=512,
        )
    )  # fmt: skip
    sort_store(SortConfig(store=str(out), progress=False, num_workers=1))
    return out


def step_rate(store: Path, out: Path, size: Sizes, student: str, **options: Any) -> float:
    """Optimizer steps per second of one `train` run: the median epoch after the first."""
    from sortkd_cache.pipelines.train import TrainConfig, train

    loss = options.pop("loss", "kd")
    if loss != "ce":
        options["logits"] = "sort"
    train(
        TrainConfig(
            cache=str(store), student=student, loss=loss,
            epochs=size.epochs, batch_size=size.batch, milestones=(), device=size.device,
            out=str(out), overwrite=True, progress=False, **options,
        )
    )  # fmt: skip
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    seconds = statistics.median(r["seconds"] for r in rows[1:] or rows)
    return (size.samples // size.batch) / seconds


def _train_rows(root: Path, store: Path, size: Sizes) -> list[tuple[str, str, str, str]]:
    rows = []
    for student in ("resnet8x4", "wrn_16_2"):
        for name, options in VARIANTS.items():
            if options.get("compile") and not size.compile:
                rows.append(("train step rate", student, name, "skipped (--smoke: no compile)"))
                continue
            rate = step_rate(store, root / f"{student}-{name}", size, student, **options)
            rows.append(("train step rate", student, name, f"{rate:.1f} steps/s"))
    return rows


def _ce_rows(root: Path, store: Path, size: Sizes) -> list[tuple[str, str, str, str]]:
    ce = step_rate(store, root / "ce", size, "resnet8x4", loss="ce")
    kd = step_rate(store, root / "kd", size, "resnet8x4", loss="kd")
    return [
        ("CE vs cached KD", "resnet8x4", "ce, fp32", f"{ce:.1f} steps/s"),
        ("CE vs cached KD", "resnet8x4", "kd cached, fp32", f"{kd:.1f} steps/s"),
        ("CE vs cached KD", "resnet8x4", "kd / ce time", f"{ce / kd:.3f}x"),
    ]


def _sweep_rows(root: Path, size: Sizes) -> list[tuple[str, str, str, str]]:
    shape = f"{size.classes}:{size.image}"
    figures = sweep_of_resnets(
        root / "sweep", False, 1, size.device, n=size.sweep_samples, grid=size.sweep_grid,
        shape=shape,
    )  # fmt: skip
    rate, n = figures["student_images_per_s"], figures["members"]
    names = {"sweep_on": "stacked", "sweep_off": "unstacked", "sequential": f"{n} train runs"}
    return [
        (size.sweep_part, "resnet8x4", label, f"{rate[key]:.0f} student-images/s")
        for key, label in names.items()
    ]


def _dump_rows(root: Path, size: Sizes) -> list[tuple[str, str, str, str]]:
    from sortkd_cache.pipelines.dump import DumpConfig, dump

    result = dump(
        DumpConfig(
            dataset=f"fake:{size.dump_samples}:{size.classes}:{size.image}", teacher=size.teacher,
            teacher_init="random", views=1, precision="bf16", out=str(root / "dump.zarr"),
            progress=False, device=size.device, batch_size=512,
        )
    )  # fmt: skip
    return [("dump", size.teacher, "bf16", f"{result.samples_per_second:.0f} samples/s")]


Row = tuple[str, str, str, str]


def run(size: Sizes, budget: float, emit: Callable[[list[Row]], None]) -> dict[str, float]:
    """Every part in turn (skipped once ``budget`` seconds have passed), each part's rows
    handed to ``emit`` as soon as it ends; each part's seconds."""
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gpu-train-") as tmp:
        root = Path(tmp)
        store = _store(root, size)
        parts = {
            "train step rate": lambda: _train_rows(root, store, size),
            "CE vs cached KD": lambda: _ce_rows(root, store, size),
            size.sweep_part: lambda: _sweep_rows(root, size),
            "dump": lambda: _dump_rows(root, size),
        }
        for name, part in parts.items():
            start = time.perf_counter()
            if start - t0 > budget:
                emit([(name, "-", "-", f"skipped (past the {budget:.0f} s budget)")])
                continue
            rows = part()
            seconds[name] = time.perf_counter() - start
            print(f"# {name}: {seconds[name]:.1f} s", file=sys.stderr, flush=True)
            emit(rows)
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny sizes, no compile.")
    ap.add_argument("--budget", type=float, default=420.0, help="Seconds before parts skip.")
    ap.add_argument("--json", default=None, help="Write the figures here too.")
    args = ap.parse_args(argv)
    import torch

    if not args.smoke and not torch.cuda.is_available():
        print("gpu_train.py: no CUDA device; run with --smoke on the CPU", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    figures: dict[str, Any] = {"machine": machine(), "smoke": args.smoke, "rows": []}

    def emit(rows: list[Row]) -> None:
        """The table's rows as each part ends, the JSON rewritten: a run cut short by a
        timeout keeps what it measured."""
        for row in rows:
            print("| {} | {} | {} | {} |".format(*row), flush=True)
        figures["rows"] += rows
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2))

    print("| part | model | variant | figure |\n|---|---|---|---:|", flush=True)
    figures["seconds"] = run(SMOKE if args.smoke else GPU, args.budget, emit)
    figures["total_seconds"] = total = time.perf_counter() - t0
    print(f"\n{total:.0f} s in all on {json.dumps(machine())}")
    emit([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
