"""Sparse (top-K) soft labels: bytes, fidelity, students and throughput against dense.

1. Teachers: ``digits_mlp`` trained with CE on ``fake:N:C:8`` (C = 100 and 1000, CIFAR-like
   3-channel images), dumped dense (float16) over a few views with the ``digits`` recipe.
2. ``copy --topk K`` of each dense store: bytes per sample-view (layout and on disk) and the
   fidelity recorded when the sparse kind is made (mean KL(dense || sparse) at T = 1, 2, 4 and
   the rows whose label fell outside the top K).
3. Students (C = 100, K = 10): ``train --cache`` with KD from the dense and from the sparse
   store of the same dump, same seeds, runs interleaved (dense, sparse, dense, sparse, ...):
   test top-1 per seed, the difference with its spread, and training throughput.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine


def _teacher(tmp: Path, spec: str, epochs: int) -> Path:
    from sortkd_cache.pipelines.train import TrainConfig, train

    out = tmp / f"teacher-{spec.replace(':', '_')}"
    cfg = TrainConfig(
        student="digits_mlp", out=str(out), dataset=spec, loss="ce", epochs=epochs,
        milestones=(int(epochs * 0.75),), lr=0.1, batch_size=128, augment="digits",
        progress=False, device="cpu",
    )  # fmt: skip
    train(cfg)
    return out / "model.safetensors"


def _dense_store(tmp: Path, spec: str, ckpt: Path, views: int) -> Path:
    from sortkd_cache.pipelines.dump import DumpConfig, dump

    out = tmp / f"dense-{spec.replace(':', '_')}.zarr"
    dump(
        DumpConfig(
            dataset=spec, teacher="digits_mlp", teacher_ckpt=str(ckpt), views=views,
            augment="digits", out=str(out), progress=False, device="cpu",
        )
    )  # fmt: skip
    return out


def _disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _fidelity(tmp: Path, dense: Path, ks: tuple[int, ...]) -> list[dict[str, Any]]:
    import sortkd_cache as sk
    from sortkd_cache.pipelines.derive import DeriveConfig, derive_store

    src = sk.open_store(dense)
    rows_views = src.num_samples * src.num_views
    dense_disk = _disk_bytes(dense / "logits" / "raw") / rows_views
    out = []
    for k in ks:
        path = tmp / f"{dense.stem}-top{k}.zarr"
        derive_store(str(dense), str(path), DeriveConfig(topk=k), progress=False)
        fid = sk.open_store(path).kind_attrs("raw")["fidelity"]
        out.append(
            {
                "classes": src.num_classes,
                "k": k,
                "bytes_per_sample_view": fid["bytes_per_sample_view"],
                "dense_bytes_per_sample_view": src.num_classes * 2,
                "disk_bytes_per_sample_view": round(
                    _disk_bytes(path / "logits" / "raw") / rows_views, 1
                ),
                "dense_disk_bytes_per_sample_view": round(dense_disk, 1),
                "mean_kl": fid["mean_kl"],
                "label_outside_topk": fid["label_outside_topk"],
                "teacher_train_view_accuracy": list(src.meta.teacher_accuracy),
            }
        )
    return out


def _student(cache: Path, out: Path, seed: int, epochs: int) -> tuple[float, float]:
    """(final test top-1, process CPU seconds of the run: steadier than wall time on a
    shared machine)."""
    from sortkd_cache.pipelines.train import TrainConfig, train

    cfg = TrainConfig(
        student="digits_mlp", out=str(out), cache=str(cache), loss="kd", epochs=epochs,
        milestones=(int(epochs * 0.75),), lr=0.1, batch_size=128, seed=seed,
        progress=False, device="cpu", overwrite=True,
    )  # fmt: skip
    t0 = time.process_time()
    result = train(cfg)
    return float(result.final_test_top1), time.process_time() - t0


def _students(tmp: Path, dense: Path, sparse: Path, seeds: int, epochs: int) -> dict[str, Any]:
    top1: dict[str, list[float]] = {"dense": [], "sparse": []}
    for seed in range(seeds):  # interleaved: dense, sparse, dense, sparse, ...
        for name, cache in (("dense", dense), ("sparse", sparse)):
            top1[name].append(_student(cache, tmp / f"{name}-{seed}", seed, epochs)[0])
    diffs = [s - d for d, s in zip(top1["dense"], top1["sparse"], strict=True)]
    return {
        "seeds": seeds,
        "epochs": epochs,
        "dense_top1": top1["dense"],
        "sparse_top1": top1["sparse"],
        "top1_difference_mean": statistics.mean(diffs),
        "top1_difference_stdev": statistics.stdev(diffs) if len(diffs) > 1 else 0.0,
    }


def _throughput(tmp: Path, dense: Path, sparse: Path, repeats: int) -> dict[str, Any]:
    """Training samples per CPU-second, 2-epoch runs, interleaved A, B, A, B; medians."""
    import sortkd_cache as sk

    n = 2 * sk.open_store(dense).num_samples
    rates: dict[str, list[float]] = {"dense": [], "sparse": []}
    for r in range(repeats):
        for name, cache in (("dense", dense), ("sparse", sparse)):
            rates[name].append(n / _student(cache, tmp / f"tp-{name}-{r}", 0, 2)[1])
    med = {k: statistics.median(v) for k, v in rates.items()}
    return {
        "repeats": repeats,
        "dense_samples_per_cpu_second": med["dense"],
        "sparse_samples_per_cpu_second": med["sparse"],
        "throughput_ratio_sparse_over_dense": med["sparse"] / med["dense"],
    }


def run(quick: bool = False) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-sparse-"))
    try:
        n100, n1000 = (1500, 3000) if quick else (4000, 6000)
        spec100, spec1000 = f"fake:{n100}:100:8", f"fake:{n1000}:1000:8"
        t_epochs = 6 if quick else 30
        dense100 = _dense_store(tmp, spec100, _teacher(tmp, spec100, t_epochs), 4)
        dense1000 = _dense_store(tmp, spec1000, _teacher(tmp, spec1000, t_epochs), 2)
        fidelity = _fidelity(tmp, dense100, (5, 10)) + _fidelity(tmp, dense1000, (10, 100))
        sparse100 = tmp / f"{dense100.stem}-top10.zarr"
        students = _students(tmp, dense100, sparse100, 3, 4 if quick else 12)
        throughput = _throughput(tmp, dense100, sparse100, 2 if quick else 5)
        return {
            "machine": machine(),
            "fidelity": fidelity,
            "students_c100_k10": students,
            "throughput_c100_k10": throughput,
            "note": "teacher and students digits_mlp on fake:N:C:8 (3x8x8), KD T=4; "
            "KL is KL(dense || sparse-implied) per row, averaged",
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
