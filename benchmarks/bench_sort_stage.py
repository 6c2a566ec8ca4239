"""The `sort` stage against a plain read-and-rewrite of the same array through the same codecs.

Both run as one Dask task per chunk on the same threaded scheduler; the only difference is
that the copy writes the raw chunk back unchanged (and computes no statistics), so the ratio
is what the sorting mechanism and its statistics cost on top of I/O and compression.

Each timed run starts where a user's first run starts: its output does not exist (the
previous run's output is removed before the clock starts, for both), so the stage pays for
creating its arrays, writing every chunk, its statistics and its completion record. The runs
are interleaved (copy, sort, copy, sort, ...) and the figures are medians. Beside wall time,
each run's process CPU time (all threads) is reported: on a shared machine the wall ratio
moves with the load of others, the CPU ratio much less.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, median_time, synthetic_store


def _copy_chunk(src: str, kind_path: str, block: int, view: int) -> int:
    from sortkd_cache.pipelines.sort._stage import _cached_store

    store = _cached_store(src, "r+", '{"storage_options": {}}')
    start, stop = store.block_bounds(block)
    raw = store.logits("raw").read_block(block, view)
    store.raw_array(kind_path)[start:stop, view] = raw
    return stop - start


def run(n: int = 200_000, v: int = 2, c: int = 100, repeats: int = 5) -> dict[str, Any]:
    from sortkd_cache.pipelines.sort._dask import run_tasks
    from sortkd_cache.pipelines.sort._stage import SortConfig, _forget_stores, sort_store

    tmp = Path(tempfile.mkdtemp(prefix="bench-sort-"))
    nan = float("nan")
    try:
        store = synthetic_store(tmp / "s.zarr", n, v, c)
        url = str(tmp / "s.zarr")

        def sort_once() -> None:
            sort_store(SortConfig(store=url, progress=False))

        def copy_once() -> None:
            from sortkd_cache import open_store

            s = open_store(url, "r+")
            s.create_array("bench/copy", (n, v, c), (s.chunk_samples, 1, c), s.meta.dtype, nan)
            _forget_stores()
            tasks = [
                (_copy_chunk, url, "bench/copy", b, vv)
                for b in range(s.num_blocks)
                for vv in range(v)
            ]
            run_tasks(tasks)

        def timed(fn: Any, outputs: tuple[str, ...]) -> tuple[float, float]:
            """(wall, process CPU) seconds of one run."""
            for out in outputs:  # untimed: every run writes a new output
                shutil.rmtree(tmp / "s.zarr" / out, ignore_errors=True)
            cpu = time.process_time()
            wall = median_time(fn, 1)
            return wall, time.process_time() - cpu

        timed(copy_once, ("bench/copy",))  # warm-up: imports, thread pools, page cache
        timed(sort_once, ("logits/sort", "progress/sort"))
        copies, sorts = [], []
        for _ in range(repeats):  # interleaved, so load changes hit both alike
            copies.append(timed(copy_once, ("bench/copy",)))
            sorts.append(timed(sort_once, ("logits/sort", "progress/sort")))
        copy_s, sort_s = (statistics.median(r[0] for r in runs) for runs in (copies, sorts))
        copy_cpu, sort_cpu = (statistics.median(r[1] for r in runs) for runs in (copies, sorts))
        return {
            "shape": [n, v, c],
            "dtype": "float16",
            "chunks": store.num_blocks * v,
            "copy_seconds": copy_s,
            "sort_stage_seconds": sort_s,
            "ratio_sort_vs_copy": sort_s / copy_s,
            "copy_cpu_seconds": copy_cpu,
            "sort_stage_cpu_seconds": sort_cpu,
            "cpu_ratio_sort_vs_copy": sort_cpu / copy_cpu,
            "repeats": repeats,
            "copy_runs": [r[0] for r in copies],
            "sort_runs": [r[0] for r in sorts],
            "load_average": os.getloadavg()[0],
            "goal": "<= 1.3",
            "machine": machine(),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    print(json.dumps(run(n=20_000 if quick else 200_000, repeats=1 if quick else 5), indent=2))
