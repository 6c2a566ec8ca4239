"""Students from a sparse (top-10) store against students from the dense store of one dump.

Two regimes of ``fake:N:100:8`` (C = 100, 3 x 8 x 8 images, the ``digits`` recipe), so the
effect of the dropped tail is seen where dark knowledge is most of the signal and where the
labels carry more of it:

* data-poor, N = 4,000 (40 samples per class): a CE-only student is far below a KD one;
* data-rich, N = 20,000 (200 per class, CIFAR-100's order of magnitude).

Per regime: a ``digits_mlp`` teacher trained with CE, a dense float16 dump of 4 views,
``copy --topk 10`` of it, then students (``digits_mlp``, KD T = 4, 12 epochs) for each seed,
interleaved CE-only, dense, sparse with the uniform tail (the default), sparse with the tail as
one bucket, and sampled stores (``copy --sample S``: S = 5 at the top-10 row's bytes, and
S = 12), at the loss's T = 4 by default and at sharper proposal temperatures
(``sampled_5_t1``: ``--proposal-temperature 1``, importance-weighted to T = 4). Reported: test
top-1 per seed (NaN where the divergence guard stopped the run), the difference to dense per
seed (mean and standard deviation), the bytes per sample-view of each store and the median
training seconds per student (interleaved, the same machine). ``--sizes=4000
--variants=dense,sampled_5`` runs a part (``--seeds=N``: N seeds, default 3); ``topk_K`` is a
``copy --topk K`` store of another K (uniform tail), ``hybrid_H_S`` one of ``--sample S
--sample-head H``, ``quant_B`` one of ``--quantize B`` (every class in B bits), and a
``_counts`` suffix on a sampled or hybrid variant trains it with ``--sparse-tail counts``.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine
from bench_sparse import _dense_store, _teacher

K = 10
#: draws of the sampled variants: 5 fits the top-10 row's bytes (41 B against 44 for C=100
#: float16), 12 is the paper's order (76 B)
DRAWS = (5, 12)
#: sharper proposals than the loss's T = 4 (importance-weighted to T = 4 in the loss):
#: ``sampled_S_tT0`` is ``copy --sample S --proposal-temperature T0``
PROPOSALS = (1, 2)
#: hybrid rows at or under the top-10 row's 44 B (C=100, float16): ``hybrid_H_S`` is
#: ``copy --sample S --sample-head H`` (the top H exact, S draws from the rest): 5+2 41 B,
#: 4+3 43 B
HYBRIDS = ((5, 2), (4, 3))
#: a sampled or hybrid variant's suffix for ``--sparse-tail counts`` (Random-Sampling KD's
#: estimator: the draws' counts as the target); without it, the default ``student``
COUNTS = "_counts"
#: quantized rows: ``quant_B`` is ``copy --quantize B`` (every class in B bits; C=100 float16:
#: B = 3 is 42 B, B = 2 is 29 B)
QUANT_BITS = (2, 3)
VARIANTS = (
    "ce", "dense", "sparse_uniform", "sparse_bucket",
    *(f"sampled_{s}" for s in DRAWS),
    *(f"sampled_{s}_t{t}" for s in DRAWS for t in PROPOSALS),
    *(f"hybrid_{h}_{s}" for h, s in HYBRIDS),
    *(f"sampled_5{COUNTS}", f"hybrid_4_3{COUNTS}"),
    *(f"quant_{b}" for b in QUANT_BITS),
)  # fmt: skip


def _student(cache: Path, out: Path, seed: int, epochs: int, variant: str) -> tuple[float, float]:
    """(test top-1, training seconds) of one student; top-1 NaN where training diverged."""
    import torch

    from sortkd_cache.pipelines.train import TrainConfig, train
    from sortkd_cache.pipelines.train._run import Diverged

    torch.set_num_threads(1)  # a shared 2-core machine: one thread per student

    extra: dict[str, Any] = {"loss": "ce" if variant == "ce" else "kd"}
    if variant.startswith("sparse_"):
        extra["sparse_tail"] = variant.removeprefix("sparse_")
    if variant.endswith(COUNTS):  # sampled rows with the counts estimator (default: student)
        extra["sparse_tail"] = "counts"
    cfg = TrainConfig(
        student="digits_mlp", out=str(out), cache=str(cache), epochs=epochs,
        milestones=(int(epochs * 0.75),), lr=0.1, batch_size=128, seed=seed,
        progress=False, device="cpu", overwrite=True, **extra,
    )  # fmt: skip
    start = time.perf_counter()
    try:
        top1 = float(train(cfg).final_test_top1)
    except Diverged as exc:  # a result too: recorded as NaN, with the guard's line on stderr
        print(f"{variant} seed {seed}: {exc}", file=sys.stderr)
        top1 = math.nan
    return top1, time.perf_counter() - start


def _summary(diffs: list[float]) -> dict[str, float]:
    """Mean and standard deviation over the seeds that finished (NaN: none did), and how many
    diverged."""
    done = [d for d in diffs if not math.isnan(d)]
    return {
        "mean": statistics.mean(done) if done else math.nan,
        "stdev": statistics.stdev(done) if len(done) > 1 else 0.0,
        "diverged": len(diffs) - len(done),
    }


def _derive_options(variant: str) -> dict[str, Any]:
    """The ``copy`` options of a variant's store: ``sparse_*`` top-K (K = 10), ``topk_K``,
    ``sampled_S[_tT0]``, ``hybrid_H_S`` (a ``_counts`` suffix: the same store), ``quant_B``."""
    v = variant.removesuffix(COUNTS)
    if v.startswith("sparse_"):
        return {"topk": K}
    if v.startswith("topk_"):
        return {"topk": int(v.removeprefix("topk_"))}
    if v.startswith("sampled_"):
        draws, _, t0 = v.removeprefix("sampled_").partition("_t")
        return {"sample": int(draws), "proposal_temperature": float(t0) if t0 else None}
    if v.startswith("hybrid_"):
        head, _, draws = v.removeprefix("hybrid_").partition("_")
        return {"sample": int(draws), "sample_head": int(head)}
    if v.startswith("quant_"):
        return {"quantize": int(v.removeprefix("quant_"))}
    raise ValueError(f"unknown variant {variant!r}")


def _caches(
    tmp: Path, dense: Path, variants: tuple[str, ...]
) -> tuple[dict[str, Path], dict[str, int]]:
    """The store each variant trains from (copies of the dense one) and its bytes per row."""
    import sortkd_cache as sk
    from sortkd_cache.pipelines.copy import DeriveConfig, derive_store

    caches = {"ce": dense, "dense": dense}
    made: dict[tuple[tuple[str, Any], ...], Path] = {}
    for v in (v for v in variants if v not in caches):
        options = _derive_options(v)
        key = tuple(sorted(options.items()))
        if key not in made:  # a _counts variant trains from its plain variant's store
            made[key] = tmp / f"{dense.stem}-{len(made)}.zarr"
            derive_store(str(dense), str(made[key]), DeriveConfig(**options), progress=False)
        caches[v] = made[key]
    stores = {v: sk.open_store(p) for v, p in caches.items()}
    sizes = {v: s.layout.row_bytes(s.meta) for v, s in stores.items()}
    return caches, sizes


def regime(
    tmp: Path, n: int, seeds: int, epochs: int, teacher_epochs: int, variants: tuple[str, ...]
) -> dict[str, Any]:
    spec = f"fake:{n}:100:8"
    ckpt = _teacher(tmp, spec, teacher_epochs)
    dense = _dense_store(tmp, spec, ckpt, 4)
    caches, sizes = _caches(tmp, dense, variants)
    top1: dict[str, list[float]] = {v: [] for v in variants}
    seconds: dict[str, list[float]] = {v: [] for v in variants}
    for seed in range(seeds):  # interleaved: every variant once per seed
        for v in variants:
            acc, secs = _student(caches[v], tmp / f"{n}-{v}-{seed}", seed, epochs, v)
            print(f"{v} seed {seed}: top-1 {acc:.2f} in {secs:.1f} s", file=sys.stderr)
            top1[v].append(acc)
            seconds[v].append(secs)
    dense_top1 = top1["dense"]
    teacher = json.loads((ckpt.parent / "summary.json").read_text())
    return {
        "dataset": spec,
        "k": K,
        "seeds": seeds,
        "epochs": epochs,
        "teacher_test_top1": teacher.get("final_test_top1"),
        "bytes_per_sample_view": {v: sizes[v] for v in variants},
        "top1": top1,
        "train_seconds_median": {v: statistics.median(seconds[v]) for v in variants},
        "difference": {
            v: _summary([a - b for a, b in zip(top1[v], dense_top1, strict=True)])
            for v in variants
            if v != "dense"
        },
    }


def run(
    quick: bool = False,
    sizes: tuple[int, ...] = (),
    variants: tuple[str, ...] = VARIANTS,
    seeds: int | None = None,
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-sparse-students-"))
    try:
        sizes = sizes or ((1500, 4000) if quick else (4000, 20000))
        n_seeds, epochs, t_epochs = (2, 3, 4) if quick else (3, 12, 30)
        seeds = seeds or n_seeds
        return {
            "machine": machine(),
            "regimes": [regime(tmp, n, seeds, epochs, t_epochs, variants) for n in sizes],
            "note": "teacher and students digits_mlp on fake:N:100:8, KD T=4 (ce 0.1, kd 0.9); "
            "difference: student top-1 minus the dense store's student, same seed",
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _arg(name: str) -> str | None:
    """``--name=value`` from the command line (None when absent)."""
    found = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith(f"--{name}=")]
    return found[-1] if found else None


if __name__ == "__main__":
    sizes_arg, variants_arg, seeds_arg = _arg("sizes"), _arg("variants"), _arg("seeds")
    print(
        json.dumps(
            run(
                quick="--quick" in sys.argv,
                sizes=tuple(int(x) for x in sizes_arg.split(",")) if sizes_arg else (),
                variants=tuple(variants_arg.split(",")) if variants_arg else VARIANTS,
                seeds=int(seeds_arg) if seeds_arg else None,
            ),
            indent=2,
        )
    )
