"""Benchmark: ``dump`` with a timm teacher against a plain loop of timm forwards.

Both sides see the same images: ``fake:N:C:SIZE`` at the teacher's input size (recipe
``none``, so no resize) and a random-weight ``timm:resnet50`` (fp32). The plain loop is what a
user would write without sortkd-cache: the images already in memory, normalised with timm's
data config, ``model(x)`` per batch of 64 under ``inference_mode``. ``dump`` adds replaying
the views, the teacher's preprocessing, the finite checks, float16 conversion, compression
and checksummed writes (threads overlap them with the forward) and the store's set-up
(the synthetic data with its fingerprint, the teacher build: ``dump_after_setup`` leaves
them out; the loop's timer starts with its model and images ready). Runs are interleaved
(dump, loop, dump, loop, ...) and the medians compared; ``throughput_ratio`` is dump
images/s over loop images/s.

Run: ``python benchmarks/bench_timm_dump.py [--images 256] [--repeats 3] [--size 224]``
prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine

ARCH = "resnet50"
BATCH = 64


def _plain_loop(spec: str, device: torch.device) -> float:
    """Seconds of a plain timm loop over ``spec``'s images (images decoded beforehand)."""
    import timm
    from timm.data import resolve_data_config
    from torchvision.transforms import Normalize

    from sortkd_cache.datasets import load_dataset

    ds = load_dataset(spec, "train")
    images = ds.images(np.arange(len(ds)))
    torch.manual_seed(0)
    model = timm.create_model(ARCH, num_classes=ds.info.num_classes).eval().to(device)
    cfg = resolve_data_config({}, model=model)
    norm = Normalize(cfg["mean"], cfg["std"])
    t0 = time.perf_counter()
    with torch.inference_mode():
        for a in range(0, len(images), BATCH):
            x = norm(images[a : a + BATCH].to(device).float().div(255))
            model(x).float().cpu()
    return time.perf_counter() - t0


def _dump(spec: str, out: Path, device: torch.device) -> tuple[float, float]:
    """Seconds of the whole dump, and of its set-up (data with its fingerprint, teacher)."""
    from sortkd_cache.pipelines.dump import DumpConfig, dump

    cfg = DumpConfig(
        dataset=spec,
        teacher=f"timm:{ARCH}",
        teacher_init="random",
        out=str(out),
        views=1,
        augment="none",
        batch_size=BATCH,
        device=device.type,
        progress=False,
        overwrite=True,
    )
    t0 = time.perf_counter()
    result = dump(cfg)
    return time.perf_counter() - t0, result.setup_seconds


def run(images: int, size: int, classes: int, repeats: int) -> dict[str, Any]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    spec = f"fake:{images}:{classes}:{size}"
    times: dict[str, list[float]] = {"dump": [], "dump_after_setup": [], "loop": []}
    with tempfile.TemporaryDirectory() as tmp:
        _plain_loop(spec, device)  # warm-up: imports, allocator
        for _ in range(repeats):
            total, setup = _dump(spec, Path(tmp) / "s.zarr", device)
            times["dump"].append(total)
            times["dump_after_setup"].append(total - setup)
            times["loop"].append(_plain_loop(spec, device))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "benchmark": "timm_dump",
        "teacher": f"timm:{ARCH} (random weights, fp32)",
        "dataset": spec,
        "device": device.type,
        "repeats": repeats,
        "seconds": times,
        "images_per_second": {k: images / v for k, v in med.items()},
        "throughput_ratio": med["loop"] / med["dump"],
        "throughput_ratio_after_setup": med["loop"] / med["dump_after_setup"],
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--classes", type=int, default=100, help="fake classes (head size)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--quick", action="store_true", help="32 images, 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.images, args.repeats = 32, 2
    torch.set_num_threads(args.threads)
    print(json.dumps(run(args.images, args.size, args.classes, args.repeats), indent=2))


if __name__ == "__main__":
    main()
