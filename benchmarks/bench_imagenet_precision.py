"""Benchmark: the teacher's forward in bf16 (autocast) against fp32, same replayed views.

For each teacher the same views are forwarded in fp32 and under ``--precision bf16`` (the
dump's own ``forward_context``), then compared:

* ``top1_agreement``: fraction of sample-views whose argmax is the same in both;
* ``max_abs_diff``: the largest |fp32 - bf16| over every logit, and ``max_rel_diff``: that
  divided by the largest |fp32 logit|;
* ``speedup``: fp32 forward seconds / bf16 forward seconds (median of interleaved repeats).

Teachers: ``digits_cnn_l`` trained for a few CE epochs on ``digits`` (a real, confident
teacher; 4 views), and a random ``resnet8x4`` on ``fake:N:100:32`` (CIFAR-100 shaped, 2 views).
On CUDA the same run also measures ``fp16``.

Run: ``python benchmarks/bench_imagenet_precision.py [--quick]`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine


def _views(spec: str, views: int, device: torch.device) -> tuple[list[torch.Tensor], Any]:
    from sortkd_cache.augment import get_recipe, normalize, replay, sample_params
    from sortkd_cache.datasets import load_dataset

    ds = load_dataset(spec, "train")
    recipe = get_recipe(ds.info.default_augment)
    idx = np.arange(len(ds), dtype=np.int64)
    images = ds.images(idx).to(device)
    out = []
    for v in range(views):
        params = sample_params(recipe, 0, idx, v, ds.image_sizes())
        out.append(normalize(replay(images, params, recipe), ds.info.mean, ds.info.std))
    return out, ds


def _trained_digits_teacher(tmp: Path, epochs: int) -> str:
    from sortkd_cache.pipelines.train import TrainConfig, train

    cfg = TrainConfig(
        student="digits_cnn_l",
        dataset="digits",
        loss="ce",
        epochs=epochs,
        lr=0.05,
        milestones=(),
        out=str(tmp / "teacher"),
        device="cpu",
        progress=False,
    )
    return str(Path(train(cfg).run_dir) / "model.safetensors")


def _forward(model: torch.nn.Module, xs: list[torch.Tensor], precision: str) -> torch.Tensor:
    from sortkd_cache.models import teacher_logits
    from sortkd_cache.pipelines.common.helpers import forward_context

    outs = []
    for x in xs:
        with forward_context(precision, x.device):
            outs.append(teacher_logits(model, x, 256))
    if xs[0].device.type == "cuda":
        torch.cuda.synchronize()
    return torch.stack(outs)


def compare(arch: str, spec: str, views: int, ckpt: str | None, repeats: int) -> dict[str, Any]:
    from sortkd_cache.pipelines.common.helpers import build_teacher, check_precision

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    xs, ds = _views(spec, views, device)
    model, _ = build_teacher(
        arch,
        ds.info.num_classes,
        ds.info.channels,
        ckpt=ckpt,
        init="checkpoint" if ckpt else "random",
        seed=0,
        device=device,
    )
    ref = _forward(model, xs, "fp32")
    out: dict[str, Any] = {
        "teacher": arch,
        "dataset": spec,
        "views": views,
        "sample_views": int(ref.shape[0] * ref.shape[1]),
        "fp32_top1_vs_labels": float((ref.argmax(-1).cpu().numpy() == ds.labels[None, :]).mean()),
    }
    for precision in ("bf16", "fp16"):
        try:
            check_precision(precision, device)
        except ValueError:
            continue
        z = _forward(model, xs, precision)
        diff = (z - ref).abs()
        times: dict[str, list[float]] = {"fp32": [], precision: []}
        for _ in range(repeats):  # interleaved: fp32, other, fp32, other, ...
            for p in times:
                t0 = time.perf_counter()
                _forward(model, xs, p)
                times[p].append(time.perf_counter() - t0)
        out[precision] = {
            "top1_agreement": float((z.argmax(-1) == ref.argmax(-1)).float().mean()),
            "max_abs_diff": float(diff.max()),
            "max_rel_diff": float(diff.max() / ref.abs().max()),
            "mean_abs_diff": float(diff.mean()),
            "speedup": statistics.median(times["fp32"]) / statistics.median(times[precision]),
        }
    return out


def run(quick: bool = False) -> dict[str, Any]:
    os.environ.setdefault("SORTKD_NO_PROGRESS", "1")
    repeats = 1 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = _trained_digits_teacher(Path(tmp), 2 if quick else 8)
        digits = compare("digits_cnn_l", "digits", 4, ckpt, repeats)
    n = 512 if quick else 2048
    resnet = compare("resnet8x4", f"fake:{n}:100:32", 2, None, repeats)
    return {"machine": machine(), "teachers": [digits, resnet]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print(json.dumps(run(args.quick), indent=1))


if __name__ == "__main__":
    main()
