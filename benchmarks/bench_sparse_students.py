"""Students from a sparse (top-10) store against students from the dense store of one dump.

Two regimes of ``fake:N:100:8`` (C = 100, 3 x 8 x 8 images, the ``digits`` recipe), so the
effect of the dropped tail is seen where dark knowledge is most of the signal and where the
labels carry more of it:

* data-poor, N = 4,000 (40 samples per class): a CE-only student is far below a KD one;
* data-rich, N = 20,000 (200 per class, CIFAR-100's order of magnitude).

Per regime: a ``digits_mlp`` teacher trained with CE, a dense float16 dump of 4 views,
``copy --topk 10`` of it, then students (``digits_mlp``, KD T = 4, 12 epochs) for each seed,
interleaved CE-only, dense, sparse with the uniform tail (the default), sparse with the tail as
one bucket. Reported: test top-1 per seed and the sparse-minus-dense difference per seed, its
mean and standard deviation.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine
from bench_sparse import _dense_store, _teacher

K = 10
VARIANTS = ("ce", "dense", "sparse_uniform", "sparse_bucket")


def _student(cache: Path, out: Path, seed: int, epochs: int, variant: str) -> float:
    from sortkd_cache.pipelines.train import TrainConfig, train

    extra: dict[str, Any] = {"loss": "ce" if variant == "ce" else "kd"}
    if variant.startswith("sparse_"):
        extra["sparse_tail"] = variant.removeprefix("sparse_")
    cfg = TrainConfig(
        student="digits_mlp", out=str(out), cache=str(cache), epochs=epochs,
        milestones=(int(epochs * 0.75),), lr=0.1, batch_size=128, seed=seed,
        progress=False, device="cpu", overwrite=True, **extra,
    )  # fmt: skip
    return float(train(cfg).final_test_top1)


def _summary(diffs: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.mean(diffs),
        "stdev": statistics.stdev(diffs) if len(diffs) > 1 else 0.0,
    }


def regime(tmp: Path, n: int, seeds: int, epochs: int, teacher_epochs: int) -> dict[str, Any]:
    from sortkd_cache.pipelines.derive import DeriveConfig, derive_store

    spec = f"fake:{n}:100:8"
    ckpt = _teacher(tmp, spec, teacher_epochs)
    dense = _dense_store(tmp, spec, ckpt, 4)
    sparse = tmp / f"{dense.stem}-top{K}.zarr"
    derive_store(str(dense), str(sparse), DeriveConfig(topk=K), progress=False)
    top1: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for seed in range(seeds):  # interleaved: every variant once per seed
        for v in VARIANTS:
            cache = sparse if v.startswith("sparse_") else dense
            top1[v].append(_student(cache, tmp / f"{n}-{v}-{seed}", seed, epochs, v))
    dense_top1 = top1["dense"]
    teacher = json.loads((ckpt.parent / "summary.json").read_text())
    return {
        "dataset": spec,
        "k": K,
        "seeds": seeds,
        "epochs": epochs,
        "teacher_test_top1": teacher.get("final_test_top1"),
        "top1": top1,
        "difference": {
            v: _summary([a - b for a, b in zip(top1[v], dense_top1, strict=True)])
            for v in ("sparse_uniform", "sparse_bucket", "ce")
        },
    }


def run(quick: bool = False) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-sparse-students-"))
    try:
        sizes = (1500, 4000) if quick else (4000, 20000)
        seeds, epochs, t_epochs = (2, 3, 4) if quick else (3, 12, 30)
        return {
            "machine": machine(),
            "regimes": [regime(tmp, n, seeds, epochs, t_epochs) for n in sizes],
            "note": "teacher and students digits_mlp on fake:N:100:8, KD T=4 (ce 0.1, kd 0.9); "
            "difference: student top-1 minus the dense store's student, same seed",
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
