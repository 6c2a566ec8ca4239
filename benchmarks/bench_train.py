"""Epoch time of cached KD against CE-only training and against an online teacher.

All three runs use the same student, store, replayed views, data path and batch size; they
differ only in where the soft labels come from: none (CE), the store (cached KD), or a
teacher forward pass per batch (online KD, the same replayed images). Each figure is the
median epoch time over the measured epochs (the first epoch is a warm-up and is dropped).
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


def _epoch_seconds(run: Path) -> float:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    times = [r["seconds"] for r in rows[1:]] or [rows[0]["seconds"]]
    return statistics.median(times)


def run(*, gpu: bool | None = None, quick: bool = False) -> dict[str, Any]:
    import torch

    from sortkd_cache.pipelines.dump import DumpConfig, dump
    from sortkd_cache.pipelines.sort import SortConfig, sort_store
    from sortkd_cache.pipelines.train import TrainConfig, train

    gpu = torch.cuda.is_available() if gpu is None else gpu
    if gpu:
        spec, teacher, student, bs, epochs = "fake:50000:100:32", "resnet32x4", "resnet8x4", 64, 3
    else:
        n = 512 if quick else 2048
        spec, teacher, student, bs, epochs = f"fake:{n}:100:32", "resnet56", "resnet20", 64, 3
    device = "cuda" if gpu else "cpu"
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        store = tmp / "s.zarr"
        d = dump(
            DumpConfig(
                dataset=spec,
                teacher=teacher,
                teacher_init="random",
                views=epochs,
                out=str(store),
                progress=False,
                device=device,
                batch_size=512,
            )
        )
        sort_store(SortConfig(store=str(store), progress=False))
        common = dict(
            cache=str(store),
            student=student,
            epochs=epochs,
            batch_size=bs,
            milestones=(),
            progress=False,
            device=device,
            logits="sort",
        )
        variants = {
            "ce": dict(loss="ce"),
            "kd_cached": dict(loss="kd"),
            "kd_online": dict(loss="kd", online_teacher=teacher, teacher_init="random"),
        }
        secs: dict[str, float] = {}
        for name, extra in variants.items():
            out = tmp / name
            train(TrainConfig(out=str(out), **common, **extra))  # type: ignore[arg-type]
            secs[name] = _epoch_seconds(out)
        return {
            "dataset": spec,
            "teacher": teacher,
            "student": student,
            "batch_size": bs,
            "device": device,
            "epoch_seconds": secs,
            "ratio_kd_cached_vs_ce": secs["kd_cached"] / secs["ce"],
            "ratio_kd_online_vs_cached": secs["kd_online"] / secs["kd_cached"],
            "saving_vs_online_percent": 100.0 * (1 - secs["kd_cached"] / secs["kd_online"]),
            "dump_seconds": d.seconds,
            "dump_samples_per_second": d.samples_per_second,
            "goal": "kd_cached/ce <= 1.05",
            "machine": machine(),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
