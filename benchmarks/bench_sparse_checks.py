"""The sparse readers' checks (issue 21 item 1): their cost on a sparse epoch.

Every chunk a sparse reader loads is looked up by key (a missing ids chunk would read as
class 0) and passes ``verify``'s row checks. Goal: at most 3% of a sparse epoch.

A dense float16 store of ``fake:N:100:8`` (a random ``digits_mlp`` teacher, 2 views) is cut to
top-10 sparse rows (``copy --topk 10``). One epoch = the training loop of ``bench_sparse.py``
(``EpochBatches`` with whole-view soft labels, the tiny ``digits_mlp`` student, KD, backward,
SGD step), the checks on (as shipped) and off (the two check functions replaced by no-ops in
this process only), interleaved A, B, A, B, medians of wall and process CPU seconds. Also
reported: the checks alone (the key lookup and the row checks of every chunk of one view,
outside any epoch; process CPU seconds) as a share of the unchecked epoch's CPU seconds.

    python benchmarks/bench_sparse_checks.py [--quick]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine
from bench_sparse import _loop_run


def _stores(tmp: Path, n: int) -> Path:
    from sortkd_cache.pipelines.copy import DeriveConfig, derive_store
    from sortkd_cache.pipelines.dump import DumpConfig, dump

    dense = tmp / "dense.zarr"
    dump(
        DumpConfig(
            dataset=f"fake:{n}:100:8", teacher="digits_mlp", teacher_init="random", views=2,
            augment="digits", out=str(dense), progress=False, device="cpu",
        )
    )  # fmt: skip
    sparse = tmp / "top10.zarr"
    derive_store(str(dense), str(sparse), DeriveConfig(topk=10), progress=False)
    return sparse


@contextmanager
def _checks(on: bool) -> Iterator[None]:
    from sortkd_cache.store import _sparse

    saved = _sparse.check_present, _sparse.check_rows
    if not on:
        _sparse.check_present = lambda *a, **k: None  # type: ignore[assignment]
        _sparse.check_rows = lambda *a, **k: None  # type: ignore[assignment]
    try:
        yield
    finally:
        _sparse.check_present, _sparse.check_rows = saved


def _view_read(cache: Path) -> float:
    """Process CPU seconds to read every chunk of view 0 through the (checked or not)
    reader (CPU time: the shared machine's wall clock is mostly waiting)."""
    import sortkd_cache as sk

    store = sk.open_store(cache)
    arr = store.sparse_logits("raw")
    t0 = time.process_time()
    for block in range(store.num_blocks):
        arr.read_block(block, 0)
    return time.process_time() - t0


def _interleaved(fn: Callable[[], Any], repeats: int) -> dict[str, list[Any]]:
    runs: dict[str, list[Any]] = {"on": [], "off": []}
    fn()  # warm up (imports, page cache)
    for _ in range(repeats):
        for mode in ("on", "off"):
            with _checks(mode == "on"):
                runs[mode].append(fn())
    return runs


def run(quick: bool = False) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    n = 2048 if quick else 16384
    repeats = 3 if quick else 7
    with tempfile.TemporaryDirectory(prefix="sortkd-bench-checks-") as d:
        cache = _stores(Path(d), n)
        epochs = _interleaved(lambda: _loop_run(cache, "digits_mlp", 1), repeats)
        reads = _interleaved(lambda: _view_read(cache), repeats)
    med = {m: [statistics.median(x[i] for x in epochs[m]) for i in (0, 1)] for m in epochs}
    read = {m: statistics.median(reads[m]) for m in reads}
    return {
        "machine": machine(),
        "store": f"fake:{n}:100:8, 2 views, top-10 sparse (copy --topk 10), float16",
        "repeats": repeats,
        "epoch_seconds_checked": med["on"][0],
        "epoch_seconds_unchecked": med["off"][0],
        "epoch_cpu_seconds_checked": med["on"][1],
        "epoch_cpu_seconds_unchecked": med["off"][1],
        "epoch_overhead_wall": med["on"][0] / med["off"][0] - 1,
        "epoch_overhead_cpu": med["on"][1] / med["off"][1] - 1,
        "view_read_cpu_seconds_checked": read["on"],
        "view_read_cpu_seconds_unchecked": read["off"],
        "checks_cpu_share_of_epoch": (read["on"] - read["off"]) / med["off"][1],
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
