"""Benchmark: `dump` on an ImageNet-like JPEG folder against torchvision ImageFolder+DataLoader.

Data: :mod:`_imagenet_like` (JPEGs around 400 x 350, 1,000 classes). Both sides do the same
work per image and view: decode (PIL), a random resized crop to 64 px, normalise, and the
teacher's forward (a random ``resnet8`` with 1,000 outputs, batches of 256, CPU):

* ``dump``: the real ``dump()`` with ``--workers W`` worker threads (each decodes, crops and
  normalises pieces of the next micro-batches; the main thread only runs the teacher) and
  ``--augment imagenet:64``, into a fresh store (fingerprinting, writing and compressing
  included);
* ``baseline``: ``torchvision.datasets.ImageFolder`` with ``RandomResizedCrop(64)`` +
  ``PILToTensor``, a ``DataLoader(num_workers=W, batch_size=256)``, normalise and the same
  teacher's forward in the main process; the logits are discarded.

With V views the baseline makes V passes (it decodes every image V times); the dump decodes
each block once for all V views. Runs alternate (baseline, dump, baseline, dump, ...);
``ratio`` is the median dump images/s over the median baseline images/s (goal >= 1.0).

Run: ``python benchmarks/bench_imagenet_dump.py [--quick] [--n N] [--repeats R]`` prints one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine
from _imagenet_like import bench_folder, interleaved

SIZE = 64
BATCH = 256
TEACHER = "resnet8"


def baseline(root: Path, workers: int, views: int) -> float:
    """Images/s (sample-views per second) of ImageFolder + DataLoader + forward."""
    from torchvision import datasets, transforms

    from sortkd_cache.models import create_model

    tf = transforms.Compose([transforms.RandomResizedCrop(SIZE), transforms.PILToTensor()])
    t0 = time.perf_counter()
    ds = datasets.ImageFolder(str(root / "train"), transform=tf)
    torch.manual_seed(0)
    model = create_model(TEACHER, num_classes=len(ds.classes), in_chans=3).eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=BATCH, shuffle=False, num_workers=workers, prefetch_factor=4
    )
    seen = 0
    with torch.inference_mode():
        for _ in range(views):
            for x, _y in loader:
                model((x.float() / 255.0 - mean) / std)
                seen += x.shape[0]
    return seen / (time.perf_counter() - t0)


def ours(root: Path, workers: int, views: int, out: Path) -> float:
    from sortkd_cache.pipelines.dump import DumpConfig, dump

    shutil.rmtree(out, ignore_errors=True)
    cfg = DumpConfig(
        dataset=f"imagefolder:{root}",
        teacher=TEACHER,
        teacher_init="random",
        out=str(out),
        views=views,
        augment=f"imagenet:{SIZE}",
        batch_size=BATCH,
        workers=workers,
        device="cpu",
        progress=False,
    )
    t0 = time.perf_counter()
    dump(cfg)
    seconds = time.perf_counter() - t0
    return _sample_views(out) / seconds


def _sample_views(store: Path) -> int:
    import sortkd_cache as sk

    s = sk.open_store(store)
    return s.num_samples * s.num_views


def run(quick: bool = False, n: int | None = None, repeats: int | None = None) -> dict[str, Any]:
    os.environ.setdefault("SORTKD_NO_PROGRESS", "1")
    n = n or (1000 if quick else 2000)
    repeats = repeats or (1 if quick else 2)
    root = bench_folder(n)
    results: dict[str, Any] = {"images": n, "classes": 1000, "size": SIZE, "teacher": TEACHER}
    configs = [(1, 1), (2, 1)] + ([] if quick else [(2, 2)])
    with tempfile.TemporaryDirectory() as tmp:
        for w, v in configs:
            results[f"workers{w}_views{v}"] = interleaved(
                lambda w=w, v=v: baseline(root, w, v),
                lambda w=w, v=v: ours(root, w, v, Path(tmp) / "s.zarr"),
                "dump",
                repeats,
            )
    results["machine"] = machine()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=None, help="training images (default 2000)")
    ap.add_argument("--repeats", type=int, default=None, help="runs of each side (default 2)")
    args = ap.parse_args()
    print(json.dumps(run(args.quick, args.n, args.repeats), indent=1))


if __name__ == "__main__":
    main()
