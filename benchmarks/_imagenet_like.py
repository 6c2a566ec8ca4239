"""A synthetic ImageNet-like JPEG folder for the data-path benchmarks.

``make_folder(root, n)`` writes ``n`` JPEGs (quality 90) into ``root/train/<class>/`` over
1,000 classes (``n_val`` more into ``root/val/``), each of a random size around 400 x 350
(height 300..400, width 340..460) with smooth colour blobs plus noise, so the files weigh and
decode like photographs (about 40 kB each) rather than like flat test patterns.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

CLASSES = 1000


def _image(rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    h, w = int(rng.integers(300, 401)), int(rng.integers(340, 461))
    small = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC), dtype=np.int16)
    noise = rng.integers(-12, 13, (h, w, 3), dtype=np.int16)
    return np.clip(smooth + noise, 0, 255).astype(np.uint8)


def make_folder(root: Path, n: int, n_val: int = 0, seed: int = 0) -> Path:
    """Write the folder (see the module doc); returns ``root``. Reuses a complete one."""
    from PIL import Image

    marker = root / f".complete-{n}-{n_val}-{seed}"
    if marker.exists():
        return root
    rng = np.random.default_rng(seed)
    for split, count in (("train", n), ("val", n_val)):
        for i in range(count):
            path = root / split / f"n{i % CLASSES:05d}" / f"{split}_{i:07d}.JPEG"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_image(rng)).save(path, quality=90)
    marker.touch()
    return root


def bench_folder(n: int) -> Path:
    """The benchmarks' folder of ``n`` training (and 200 val) images, made once and kept under
    ``$SORTKD_BENCH_DATA`` (default: the temp dir)."""
    cache = Path(os.environ.get("SORTKD_BENCH_DATA", tempfile.gettempdir())) / "sortkd-inet"
    return make_folder(cache / f"n{n}", n, n_val=200)


def main_for(run: Callable[[bool, int | None], dict[str, Any]], doc: str | None) -> None:
    """A benchmark's command line: ``[--quick] [--n N]``, one JSON object printed."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=None, help="training images (default 2000)")
    args = ap.parse_args()
    print(json.dumps(run(args.quick, args.n), indent=1))


def interleaved(
    baseline: Callable[[], float], ours: Callable[[], float], name: str, repeats: int
) -> dict[str, Any]:
    """Rates (per second) of ``baseline`` and ``ours`` run alternately ``repeats`` times each:
    their medians, ``ratio`` = ours / baseline, and every run."""
    runs: dict[str, list[float]] = {"baseline": [], name: []}
    for _ in range(repeats):
        runs["baseline"].append(baseline())
        runs[name].append(ours())
    base, mine = statistics.median(runs["baseline"]), statistics.median(runs[name])
    return {
        "baseline_per_second": round(base, 1),
        f"{name}_per_second": round(mine, 1),
        "ratio": round(mine / base, 3),
        "runs": runs,
    }
