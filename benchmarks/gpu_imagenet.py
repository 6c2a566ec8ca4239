"""GPU benchmark of the ImageNet-scale data path (run on a GPU machine; prints one JSON object).

Not run in the session that wrote it (no GPU there): it is ready for `benchmarks/gpu_run.sh`.

1. ``dump`` images/s (sample-views/s, loop only: set-up excluded) in fp32 and bf16
   (``--precision``; channels_last under autocast), with the achieved TFLOP/s against the
   GPU's dense bf16 peak (``--peak-tflops``, default 989 for an H200 SXM):
   - ``resnet32x4`` at 32 px on ``fake:50000:100:32`` (goal on an H200: bf16 >= 100,000/s,
     4.4x the 22,750/s measured in fp32);
   - torchvision ``resnet50`` at 224 px (``imagenet:224``) on a synthetic JPEG folder, with
     ``--decoder pil`` (decoder threads) and ``--decoder nvjpeg`` (batched GPU decoding).
2. The cached-KD / CE epoch time ratio on the streamed soft-label path (``--soft-labels
   stream``), ``resnet8x4`` student on a ``fake:50000:100:32`` store.

FLOPs per image (multiply-adds x 2): resnet32x4 at 32 px 2.17 GFLOP, resnet50 at 224 px
8.2 GFLOP.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _imagenet_like import make_folder

GFLOP = {"resnet32x4": 2.17, "resnet50": 8.2}


def _dump(tmp: Path, **kw: Any) -> dict[str, float]:
    from sortkd_cache.pipelines.dump import DumpConfig, dump

    out = tmp / "s.zarr"
    shutil.rmtree(out, ignore_errors=True)
    cfg = DumpConfig(out=str(out), teacher_init="random", device="cuda", progress=False, **kw)
    r = dump(cfg)
    loop = r.seconds - r.setup_seconds
    n = r.samples_per_second * r.seconds  # sample-views written
    return {"per_second": round(n / loop, 1), "forward_seconds": round(r.forward_seconds, 2)}


def dump_figures(tmp: Path, peak: float, quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    n32 = 10_000 if quick else 50_000
    for precision in ("fp32", "bf16"):
        fig = _dump(
            tmp,
            dataset=f"fake:{n32}:100:32",
            teacher="resnet32x4",
            views=2,
            batch_size=1024,
            precision=precision,
        )
        fig["tflops"] = round(fig["per_second"] * GFLOP["resnet32x4"] / 1e3, 1)
        fig["share_of_peak"] = round(fig["tflops"] / peak, 3)
        out[f"resnet32x4_32px_{precision}"] = fig
    root = make_folder(tmp / "jpegs", 2000 if quick else 5000)
    for precision in ("fp32", "bf16"):
        for decoder in ("pil", "nvjpeg"):
            fig = _dump(
                tmp,
                dataset=f"imagefolder:{root}",
                teacher="resnet50",
                augment="imagenet:224",
                views=1,
                batch_size=256,
                precision=precision,
                decoder=decoder,
                workers=min(16, os.cpu_count() or 1),
            )
            fig["tflops"] = round(fig["per_second"] * GFLOP["resnet50"] / 1e3, 1)
            fig["share_of_peak"] = round(fig["tflops"] / peak, 3)
            out[f"resnet50_224px_{precision}_{decoder}"] = fig
    base = out["resnet32x4_32px_fp32"]["per_second"]
    out["resnet32x4_bf16_speedup"] = round(out["resnet32x4_32px_bf16"]["per_second"] / base, 2)
    return out


def stream_epoch_ratio(tmp: Path, quick: bool) -> dict[str, Any]:
    from sortkd_cache.pipelines.dump import DumpConfig, dump
    from sortkd_cache.pipelines.train import TrainConfig, train

    n = 10_000 if quick else 50_000
    store = tmp / "c100.zarr"
    dump(
        DumpConfig(
            dataset=f"fake:{n}:100:32",
            teacher="resnet32x4",
            teacher_init="random",
            out=str(store),
            views=2,
            device="cuda",
            progress=False,
        )
    )
    seconds: dict[str, float] = {}
    for name, loss, soft in (("ce", "ce", "auto"), ("kd_stream", "kd", "stream")):
        t0 = time.perf_counter()
        train(
            TrainConfig(
                student="resnet8x4",
                cache=str(store),
                loss=loss,
                soft_labels=soft,
                epochs=2,
                batch_size=256,
                milestones=(),
                device="cuda",
                out=str(tmp / name),
                progress=False,
            )
        )
        seconds[name] = time.perf_counter() - t0
    return {"seconds": seconds, "kd_stream_over_ce_ratio": seconds["kd_stream"] / seconds["ce"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print(json.dumps({"skipped": "no CUDA device"}))
        return
    os.environ.setdefault("SORTKD_NO_PROGRESS", "1")
    tmp = Path(tempfile.mkdtemp(prefix="gpu-inet-"))
    try:
        result = {
            "device": torch.cuda.get_device_name(0),
            "peak_tflops": args.peak_tflops,
            "dump": dump_figures(tmp, args.peak_tflops, args.quick),
            "train_streamed": stream_epoch_ratio(tmp, args.quick),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
