"""Sparse (top-K) soft labels: bytes, fidelity and training throughput against dense.

1. Teachers: ``digits_mlp`` trained with CE on ``fake:N:C:8`` (C = 100 and 1000, CIFAR-like
   3-channel images), dumped dense (float16) over a few views with the ``digits`` recipe.
2. ``copy --topk K`` of each dense store: bytes per sample-view (layout and on disk) and the
   fidelity recorded when the sparse kind is made (mean KL(dense || sparse) at T = 1, 2, 4 and
   the rows whose label fell outside the top K); likewise ``copy --quantize B`` (B = 2, 3, 4:
   mean KL and the largest logit error).
3. Students from dense and sparse stores (accuracy): ``bench_sparse_students.py``.
4. Training throughput (C = 100, K = 10, KD T=4, batch 128), dense against sparse, runs
   interleaved (A, B, A, B, ...), medians: samples per second (wall) and per process
   CPU-second of (a) whole ``train`` runs (setup and evaluation included) and (b) the training
   loop alone (``EpochBatches`` + the loss + backward + SGD step: what a step costs), for the
   tiny ``digits_mlp`` on the 3x8x8 stores above and for ``resnet8`` on CIFAR-shaped
   ``fake:1536:100:32`` stores (teacher ``digits_mlp``, ``cifar`` recipe). ``--throughput-only``
   runs just this part, ``--fidelity-only`` all but it.
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

#: the bit widths of ``copy --quantize B`` measured beside top-K (C = 100 float16: 29, 42, 54 B)
QUANT_BITS = (2, 3, 4)


def _teacher(tmp: Path, spec: str, epochs: int, augment: str = "digits") -> Path:
    from sortkd_cache.pipelines.train import TrainConfig, train

    out = tmp / f"teacher-{spec.replace(':', '_')}"
    cfg = TrainConfig(
        student="digits_mlp", out=str(out), dataset=spec, loss="ce", epochs=epochs,
        milestones=(int(epochs * 0.75),), lr=0.1, batch_size=128, augment=augment,
        progress=False, device="cpu",
    )  # fmt: skip
    train(cfg)
    return out / "model.safetensors"


def _dense_store(tmp: Path, spec: str, ckpt: Path, views: int, augment: str = "digits") -> Path:
    from sortkd_cache.pipelines.dump import DumpConfig, dump

    out = tmp / f"dense-{spec.replace(':', '_')}.zarr"
    dump(
        DumpConfig(
            dataset=spec, teacher="digits_mlp", teacher_ckpt=str(ckpt), views=views,
            augment=augment, out=str(out), progress=False, device="cpu",
        )
    )  # fmt: skip
    return out


def _disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _fidelity(tmp: Path, dense: Path, ks: tuple[int, ...]) -> list[dict[str, Any]]:
    import sortkd_cache as sk
    from sortkd_cache.pipelines.copy import DeriveConfig, derive_store

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


def _quant_fidelity(tmp: Path, dense: Path, bits: tuple[int, ...]) -> list[dict[str, Any]]:
    """``copy --quantize B`` of ``dense``: bytes per sample-view (layout and on disk) and the
    fidelity recorded when it was made (mean KL(dense || quantized) at T = 1, 2, 4, the
    largest logit error)."""
    import sortkd_cache as sk
    from sortkd_cache.pipelines.copy import DeriveConfig, derive_store

    src = sk.open_store(dense)
    rows_views = src.num_samples * src.num_views
    out = []
    for b in bits:
        path = tmp / f"{dense.stem}-q{b}.zarr"
        derive_store(str(dense), str(path), DeriveConfig(quantize=b), progress=False)
        fid = sk.open_store(path).kind_attrs("raw")["fidelity"]
        disk = _disk_bytes(path / "logits" / "raw") / rows_views
        out.append(
            {
                "classes": src.num_classes,
                "bits": b,
                "bytes_per_sample_view": fid["bytes_per_sample_view"],
                "disk_bytes_per_sample_view": round(disk, 1),
                "mean_kl": fid["mean_kl"],
                "max_logit_error": fid["max_logit_error"],
            }
        )
    return out


def _train_run(cache: Path, out: Path, student: str, epochs: int) -> tuple[float, float]:
    """(wall, process CPU) seconds of one whole ``train`` run (KD, batch 128, seed 0)."""
    from sortkd_cache.pipelines.train import TrainConfig, train

    cfg = TrainConfig(
        student=student, out=str(out), cache=str(cache), loss="kd", epochs=epochs,
        milestones=(epochs,), lr=0.05, batch_size=128, seed=0, progress=False, device="cpu",
        overwrite=True,
    )  # fmt: skip
    w0, c0 = time.perf_counter(), time.process_time()
    train(cfg)
    return time.perf_counter() - w0, time.process_time() - c0


def _loop_run(cache: Path, student: str, epochs: int) -> tuple[float, float]:
    """(wall, process CPU) seconds of the training loop alone: the batches of ``epochs``
    epochs (replayed views and soft labels, the data path ``train`` takes), the student's
    forward, KD (``compute_loss``, dense or sparse rows alike), backward and
    an SGD step; opening the store and building the model are not timed."""
    import torch

    import sortkd_cache as sk
    from sortkd_cache.losses import compute_loss, make_loss
    from sortkd_cache.models import create_model

    store = sk.open_store(cache)
    batches = sk.EpochBatches.from_store(store, kind="raw", batch_size=128, seed=0)
    torch.manual_seed(0)
    model = create_model(student, store.num_classes, in_chans=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    cfg = make_loss("kd")
    w0, c0 = time.perf_counter(), time.process_time()
    for epoch in range(epochs):
        for b in batches.epoch(epoch, last=epochs - 1):
            out = model(b.x)
            loss, _ = compute_loss(cfg, out, b.soft, b.y, epoch=epoch + 1)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
    seconds = time.perf_counter() - w0, time.process_time() - c0
    batches.close()
    return seconds


def _throughput(
    tmp: Path, dense: Path, sparse: Path, student: str, repeats: int, epochs: int
) -> dict[str, Any]:
    """Samples per second (wall) and per process CPU-second, dense vs sparse, of whole
    ``train`` runs and of the training loop alone; runs interleaved A, B, A, B; medians."""
    import sortkd_cache as sk

    n = epochs * sk.open_store(dense).num_samples
    runs: dict[str, list[tuple[float, float]]] = {}
    for r in range(repeats):
        for name, cache in (("dense", dense), ("sparse", sparse)):
            out = tmp / f"tp-{student}-{name}-{r}"
            runs.setdefault(f"train_{name}", []).append(_train_run(cache, out, student, epochs))
            runs.setdefault(f"loop_{name}", []).append(_loop_run(cache, student, epochs))
    out: dict[str, Any] = {"student": student, "repeats": repeats, "epochs": epochs}
    for part in ("train", "loop"):
        for name in ("dense", "sparse"):
            walls, cpus = zip(*runs[f"{part}_{name}"], strict=True)
            out[f"{part}_{name}_samples_per_second"] = n / statistics.median(walls)
            out[f"{part}_{name}_samples_per_cpu_second"] = n / statistics.median(cpus)
        for unit in ("second", "cpu_second"):
            out[f"{part}_ratio_sparse_over_dense_per_{unit}"] = (
                out[f"{part}_sparse_samples_per_{unit}"] / out[f"{part}_dense_samples_per_{unit}"]
            )
    # the keys of earlier runs: whole train runs, per CPU-second
    out["dense_samples_per_cpu_second"] = out["train_dense_samples_per_cpu_second"]
    out["sparse_samples_per_cpu_second"] = out["train_sparse_samples_per_cpu_second"]
    out["throughput_ratio_sparse_over_dense"] = out["train_ratio_sparse_over_dense_per_cpu_second"]
    return out


def _cifar_stores(tmp: Path, n: int, t_epochs: int) -> tuple[Path, Path]:
    """A dense store of ``fake:n:100:32`` (2 views, ``cifar`` recipe) and its top-10 copy."""
    from sortkd_cache.pipelines.copy import DeriveConfig, derive_store

    spec = f"fake:{n}:100:32"
    dense = _dense_store(tmp, spec, _teacher(tmp, spec, t_epochs, "cifar"), 2, "cifar")
    sparse = tmp / f"{dense.stem}-top10.zarr"
    derive_store(str(dense), str(sparse), DeriveConfig(topk=10), progress=False)
    return dense, sparse


def _throughputs(
    tmp: Path, dense100: Path, sparse100: Path, quick: bool
) -> dict[str, dict[str, Any]]:
    """Both students, with ONE intra-op thread: on a shared 2-core machine a second thread
    mostly waits at OpenMP barriers for a core that another process holds, which makes
    small ops 10x slower at random and the comparison meaningless."""
    import os

    import torch

    cifar = _cifar_stores(tmp, 256 if quick else 1536, 2 if quick else 5)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = {}
    try:
        for key, stores, student, repeats, epochs in (
            ("throughput_c100_k10", (dense100, sparse100), "digits_mlp", 3 if quick else 15, 2),
            ("throughput_cifar_c100_k10", cifar, "resnet8", 1 if quick else 5, 1 if quick else 2),
        ):
            load = os.getloadavg()[0]
            res = _throughput(tmp, *stores, student, repeats, epochs)
            res["torch_threads"] = 1
            res["load_average_1min"] = [round(load, 2), round(os.getloadavg()[0], 2)]
            out[key] = res
    finally:
        torch.set_num_threads(threads)
    return out


def run(
    quick: bool = False, throughput_only: bool = False, fidelity_only: bool = False
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-sparse-"))
    try:
        n100, n1000 = (1500, 3000) if quick else (4000, 6000)
        spec100, spec1000 = f"fake:{n100}:100:8", f"fake:{n1000}:1000:8"
        t_epochs = 6 if quick else 30
        dense100 = _dense_store(tmp, spec100, _teacher(tmp, spec100, t_epochs), 4)
        sparse100 = tmp / f"{dense100.stem}-top10.zarr"
        note = (
            "teacher and students digits_mlp on fake:N:C:8 (3x8x8), KD T=4; "
            "KL is KL(dense || sparse-implied) per row, averaged"
        )
        if throughput_only:
            from sortkd_cache.pipelines.copy import DeriveConfig, derive_store

            derive_store(str(dense100), str(sparse100), DeriveConfig(topk=10), progress=False)
            return {"machine": machine(), **_throughputs(tmp, dense100, sparse100, quick)}
        dense1000 = _dense_store(tmp, spec1000, _teacher(tmp, spec1000, t_epochs), 2)
        fidelity = _fidelity(tmp, dense100, (5, 10)) + _fidelity(tmp, dense1000, (10, 100))
        quantized = _quant_fidelity(tmp, dense100, QUANT_BITS)
        quantized += _quant_fidelity(tmp, dense1000, QUANT_BITS)
        if fidelity_only:
            return {"machine": machine(), "fidelity": fidelity, "quantized": quantized}
        return {
            "machine": machine(),
            "fidelity": fidelity,
            "quantized": quantized,
            **_throughputs(tmp, dense100, sparse100, quick),
            "note": note,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    result = run(
        quick="--quick" in sys.argv,
        throughput_only="--throughput-only" in sys.argv,
        fidelity_only="--fidelity-only" in sys.argv,
    )
    print(json.dumps(result, indent=2))
