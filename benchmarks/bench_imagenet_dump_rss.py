"""Benchmark: peak RSS of `dump` on the ImageNet-like JPEG folder, by block size.

Each figure is the ``ru_maxrss`` of a fresh process: ``dump`` (1 or 2 workers, 1 view, the
teacher and crop of :mod:`bench_imagenet_dump`) with blocks (``--chunk-samples``) of 256 and
of 1,024 samples, and, for scale, a process that only builds the teacher and runs one forward
pass of a 256-image batch (what any loader feeding that teacher pays). The workers hold a few
micro-batches, not a block, so the dump's peak should not grow with the block size.

Run: ``python benchmarks/bench_imagenet_dump_rss.py [--quick] [--n N]`` prints one JSON object.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine
from _imagenet_like import bench_folder, main_for
from bench_imagenet_dump import BATCH, SIZE, TEACHER

_DUMP = """
import resource, sys
from sortkd_cache.pipelines.dump import DumpConfig, dump
root, out, workers, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
dump(DumpConfig(dataset="imagefolder:" + root, teacher={teacher!r}, teacher_init="random",
                out=out, views=1, augment="imagenet:{size}", batch_size={batch},
                workers=workers, chunk_samples=chunk, device="cpu", progress=False))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

_FORWARD = """
import resource, torch
from sortkd_cache.models import create_model
model = create_model({teacher!r}, num_classes=1000, in_chans=3).eval()
with torch.inference_mode():
    model(torch.randn({batch}, 3, {size}, {size}))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_mb(code: str, *args: str) -> float:
    fmt = {"teacher": TEACHER, "size": SIZE, "batch": BATCH}
    cmd = [sys.executable, "-c", code.format(**fmt), *args]
    env = {**os.environ, "SORTKD_NO_PROGRESS": "1"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return round(int(out.split()[-1]) / 1024, 1)


def run(quick: bool = False, n: int | None = None) -> dict[str, Any]:
    n = n or (1000 if quick else 2000)
    root = bench_folder(n)
    results: dict[str, Any] = {"images": n, "size": SIZE, "teacher": TEACHER, "batch": BATCH}
    results["forward_only_peak_rss_mb"] = _peak_mb(_FORWARD)
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            for chunk in (256, 1024):
                out = str(Path(tmp) / f"w{workers}c{chunk}.zarr")
                peak = _peak_mb(_DUMP, str(root), out, str(workers), str(chunk))
                results[f"workers{workers}_chunk{chunk}_peak_rss_mb"] = peak
    results["machine"] = machine()
    return results


if __name__ == "__main__":
    main_for(run, __doc__)
