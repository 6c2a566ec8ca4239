"""Benchmark: `dump` wall time against the teacher's forward passes alone, same views.

The baseline does exactly the compute of a dump and nothing else: load the dataset, build the
teacher, then for every (block, view) unit sample the view's parameters, replay them, normalize
and run the teacher in the same micro-batches; no store, no checks, no copies back to the host
(on CUDA one synchronize at the end). The dump is the real ``dump()`` into a fresh store.

Reported, as medians over interleaved repeats (baseline, dump, baseline, dump, ...):

* ``ratio``: dump wall time / baseline wall time, both from entry to exit (data, teacher, units).
  What writing, compressing, checksumming, NaN checks and the store cost on top of the compute.
* ``ratio_loop``: the dump's unit loop / the baseline's unit loop (set-up excluded on both sides;
  the dump's set-up also fingerprints the data and creates the store).
* ``ratio_best``: best dump wall time / best baseline wall time (least disturbed runs), and
  ``ratio_cpu``: median process CPU time ratio (all threads). On a shared machine other
  processes make wall times noisy; these two show the dump's own extra work.

Goal: ``ratio <= 1.05`` (I/O hidden behind compute).

Configurations: on CPU ``fake:1024:100:32`` with a random ``resnet8x4`` teacher, 2 views,
chunks of 256 samples (8 units; about 50 s in all on 2 idle cores); on CUDA
``fake:50000:100:32`` (CIFAR-100 shaped) with a random ``resnet32x4``, 4 views, default chunks
(~10k samples, 2 MiB), reporting samples/s. ``quick=True`` shrinks both.

Run: ``python benchmarks/bench_dump.py [--quick]`` prints one JSON object; ``run(quick)``
returns it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sortkd_cache.pipelines.dump import DumpConfig, dump
from sortkd_cache.pipelines.dump import _stage as dump_mod

GOAL = 1.05


def config(quick: bool, cuda: bool) -> dict[str, Any]:
    if cuda:
        n = 10_000 if quick else 50_000
        return {
            "dataset": f"fake:{n}:100:32",
            "teacher": "resnet32x4",
            "views": 2 if quick else 4,
            "chunk_samples": None,
            "batch_size": 256,
            "repeats": 2 if quick else 3,
        }
    n = 512 if quick else 1024
    return {
        "dataset": f"fake:{n}:100:32",
        "teacher": "resnet8x4",
        "views": 1 if quick else 2,
        "chunk_samples": n // 4,
        "batch_size": 256,
        "repeats": 1 if quick else 3,
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forward_only(cfg: DumpConfig, device: torch.device, warmup: bool = False) -> dict[str, float]:
    """The teacher's compute over every unit of ``cfg``, nothing stored; wall seconds."""
    from sortkd_cache.augment import get_recipe, normalize, replay, sample_params
    from sortkd_cache.datasets import load_dataset
    from sortkd_cache.pipelines.common.helpers import build_teacher
    from sortkd_cache.pipelines.dump._decode import block_images
    from sortkd_cache.store import choose_chunk_samples

    t0 = time.perf_counter()
    ds = load_dataset(cfg.dataset, cfg.split)
    recipe = get_recipe(cfg.augment or ds.info.default_augment)
    model, _ = build_teacher(
        cfg.teacher,
        ds.info.num_classes,
        ds.info.channels,
        ckpt=None,
        init="random",
        seed=cfg.seed,
        device=device,
    )
    n = len(ds)
    chunk = cfg.chunk_samples or choose_chunk_samples(n, ds.info.num_classes, 2)
    chunk = min(chunk, n)
    blocks = list(range(-(-n // chunk)))
    if warmup:  # one unit of the first and of the last block: every micro-batch shape
        blocks = sorted({blocks[0], blocks[-1]})
    _sync(device)
    t1 = time.perf_counter()
    last = None
    for block in blocks:
        start, stop = block * chunk, min(n, (block + 1) * chunk)
        images = block_images(ds, start, stop, device)
        sizes = ds.image_sizes()[start:stop]
        for view in range(1 if warmup else cfg.views):
            params = sample_params(recipe, cfg.seed, np.arange(start, stop), view, sizes)
            x = normalize(replay(images, params, recipe), ds.info.mean, ds.info.std)
            last = dump_mod.teacher_logits(model, x, cfg.batch_size)
    _sync(device)
    t2 = time.perf_counter()
    del last
    return {"seconds": t2 - t0, "loop_seconds": t2 - t1, "setup_seconds": t1 - t0}


def timed_dump(cfg: DumpConfig) -> dict[str, float]:
    t0 = time.perf_counter()
    result = dump(cfg)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "loop_seconds": result.seconds - result.setup_seconds,
        "setup_seconds": result.setup_seconds,
        "samples_per_second": result.samples_per_second,
    }


def run(quick: bool = False, repeats: int | None = None) -> dict[str, Any]:
    """Time dump against forward-only; returns the JSON-able report."""
    import zarr  # noqa: F401 - imported once, outside the timings

    os.environ.setdefault("SORTKD_NO_PROGRESS", "1")
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    setup = config(quick, cuda)
    default_repeats = int(setup.pop("repeats"))
    repeats = default_repeats if repeats is None else repeats
    tmp = Path(tempfile.mkdtemp(prefix="bench_dump_"))
    cfg = DumpConfig(
        out=str(tmp / "store.zarr"),
        teacher_init="random",
        device=device.type,
        overwrite=True,
        progress=False,
        **setup,
    )
    try:
        forward_only(cfg, device, warmup=True)
        base: list[dict[str, float]] = []
        dumps: list[dict[str, float]] = []
        for _ in range(repeats):  # interleaved, so slow phases of a shared machine hit both
            c0 = time.process_time()
            base.append({**forward_only(cfg, device), "cpu_seconds": time.process_time() - c0})
            c0 = time.process_time()
            dumps.append({**timed_dump(cfg), "cpu_seconds": time.process_time() - c0})
        store_bytes = sum(p.stat().st_size for p in (tmp / "store.zarr").rglob("*") if p.is_file())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(rows: list[dict[str, float]], key: str) -> float:
        return float(statistics.median(r[key] for r in rows))

    n_views = int(cfg.dataset.split(":")[1]) * cfg.views
    ratio = med(dumps, "seconds") / med(base, "seconds")
    ratio_loop = med(dumps, "loop_seconds") / med(base, "loop_seconds")
    ratio_best = min(r["seconds"] for r in dumps) / min(r["seconds"] for r in base)
    ratio_cpu = med(dumps, "cpu_seconds") / med(base, "cpu_seconds")
    return {
        "benchmark": "dump",
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "config": {k: v for k, v in cfg.to_dict().items() if k not in ("out", "progress")},
        "repeats": repeats,
        "sample_views": n_views,
        "dump_seconds": [round(r["seconds"], 3) for r in dumps],
        "dump_loop_seconds": [round(r["loop_seconds"], 3) for r in dumps],
        "forward_seconds": [round(r["seconds"], 3) for r in base],
        "forward_loop_seconds": [round(r["loop_seconds"], 3) for r in base],
        "ratio": round(ratio, 4),
        "ratio_loop": round(ratio_loop, 4),
        "ratio_best": round(ratio_best, 4),
        "ratio_cpu": round(ratio_cpu, 4),
        "dump_cpu_seconds": [round(r["cpu_seconds"], 3) for r in dumps],
        "forward_cpu_seconds": [round(r["cpu_seconds"], 3) for r in base],
        "goal": GOAL,
        "meets_goal": ratio <= GOAL,
        "dump_samples_per_second": round(n_views / med(dumps, "seconds"), 1),
        "forward_samples_per_second": round(n_views / med(base, "seconds"), 1),
        "store_bytes": store_bytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a small, fast configuration")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats")
    args = parser.parse_args()
    print(json.dumps(run(quick=args.quick, repeats=args.repeats), indent=2))


if __name__ == "__main__":
    main()
