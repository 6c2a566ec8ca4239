"""Benchmark: peak RSS of a `train` rank, whole-view against streamed soft labels, vs N.

Two stores are dumped from ``fake:N:1000:8`` (C = 1,000 classes, float16, 2 views, a random
``digits_mlp`` teacher) for N = 50,000 and 200,000: one view's soft labels are 95 MiB and
381 MiB. Each training run is its own process (``train()``: 2 epochs, ``digits_mlp`` student,
batch 512, CPU, device data path) and reports its peak RSS (``ru_maxrss``):

* ``ce``: ``--loss ce`` from the same store (no soft labels read): the rest of the rank;
* ``view``: ``--loss kd --soft-labels view`` (the current view plus the next one prefetched);
* ``stream``: ``--loss kd --soft-labels stream`` (8 lanes, a window of 2 chunks).

``soft_label_mib`` = peak RSS of the run minus that of the ``ce`` run on the same store: the
soft labels' share. Goal: on the streamed path it does not grow with N.

The same for a sparse copy of each store (``copy --topk 10``: 54 B per sample-view instead
of 2,000), ``sparse_view`` and ``sparse_stream`` against the same ``ce`` run: the whole-view
sparse source holds the view with its ids widened to int64 (and the next view prefetched),
the streamed one a window of chunks with the ids as stored (uint16).

Run: ``python benchmarks/bench_memory_stream.py [--quick]`` prints one JSON object (quick:
N = 10,000 and 40,000).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine

C = 1000
TOPK = 10

_CHILD = """
import json, resource, sys
from sortkd_cache.pipelines.train import TrainConfig, train
cfg = TrainConfig(**json.loads(sys.argv[1]))
train(cfg)
print(json.dumps({"maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def dump_store(n: int, out: Path) -> None:
    """Dump the store (reused when a complete one is already there)."""
    import sortkd_cache as sk
    from sortkd_cache.pipelines.dump import DumpConfig, dump

    if (out / "zarr.json").exists() and sk.open_store(out).meta.complete:
        return
    dump(
        DumpConfig(
            dataset=f"fake:{n}:{C}:8",
            teacher="digits_mlp",
            teacher_init="random",
            out=str(out),
            overwrite=True,
            views=2,
            batch_size=1024,
            device="cpu",
            progress=False,
        )
    )


def sparse_store(dense: Path, out: Path) -> None:
    """The top-K copy of ``dense`` (reused when already there)."""
    import sortkd_cache as sk
    from sortkd_cache.pipelines.copy import DeriveConfig, derive_store

    if (out / "zarr.json").exists() and sk.open_store(out).meta.complete:
        return
    derive_store(str(dense), str(out), DeriveConfig(topk=TOPK), overwrite=True, progress=False)


def peak_rss_mib(store: Path, run_dir: Path, loss: str, soft_labels: str) -> float:
    cfg = {
        "student": "digits_mlp",
        "cache": str(store),
        "loss": loss,
        "epochs": 2,
        "batch_size": 512,
        "milestones": [],
        "device": "cpu",
        "data_path": "device",
        "soft_labels": soft_labels,
        "out": str(run_dir),
        "overwrite": True,
        "progress": False,
    }
    env = dict(os.environ, SORTKD_NO_PROGRESS="1")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(cfg)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return round(json.loads(proc.stdout.strip().splitlines()[-1])["maxrss_kib"] / 1024, 1)


def sk_bytes_per_row(store: Path) -> int:
    import sortkd_cache as sk

    return int(sk.open_store(store).sparse_spec.bytes_per_row)


def run(quick: bool = False) -> dict[str, Any]:
    sizes = (10_000, 40_000) if quick else (50_000, 200_000)
    out: dict[str, Any] = {"classes": C, "dtype": "float16", "topk": TOPK}
    cache = Path(os.environ.get("SORTKD_BENCH_DATA", tempfile.gettempdir())) / "sortkd-mem"
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            store, sparse = cache / f"fake{n}.zarr", cache / f"fake{n}-top{TOPK}.zarr"
            dump_store(n, store)
            sparse_store(store, sparse)
            run_dir = Path(tmp) / "run"
            rss = {
                "ce": peak_rss_mib(store, run_dir, "ce", "auto"),
                "view": peak_rss_mib(store, run_dir, "kd", "view"),
                "stream": peak_rss_mib(store, run_dir, "kd", "stream"),
                "sparse_view": peak_rss_mib(sparse, run_dir, "kd", "view"),
                "sparse_stream": peak_rss_mib(sparse, run_dir, "kd", "stream"),
            }
            sparse_row = sk_bytes_per_row(sparse)
            out[f"n{n}"] = {
                "view_mib": round(n * C * 2 / 2**20, 1),
                "sparse_view_mib": round(n * sparse_row / 2**20, 1),
                "peak_rss_mib": rss,
                "soft_label_mib": {k: round(v - rss["ce"], 1) for k, v in rss.items() if k != "ce"},
            }
    out["machine"] = machine()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print(json.dumps(run(args.quick), indent=1))


if __name__ == "__main__":
    main()
