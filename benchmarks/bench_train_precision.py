"""bf16 on the CPU: `train` on `digits` in bf16 against fp32, over seeds (issue 27).

    python benchmarks/bench_train_precision.py [--seeds 0,1,2] [--epochs 12]

Plain CE training of ``digits_cnn_s`` on the embedded ``digits`` (1437 training images, 360
test images, 10 classes), the default augmentation, batch 64, lr 0.05 decayed at 2/3 and
5/6 of the run; each seed trained in fp32 and in bf16 (``--precision bf16``: the forward under
``torch.autocast``, logits, loss and weights in float32), interleaved. Reports each run's
final test top-1, the mean ± std over seeds, the paired bf16 - fp32 differences, and the
median epoch time of each precision. Goal: bf16 within 1 point of fp32.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine


def _run(root: Path, seed: int, precision: str, epochs: int) -> dict[str, float]:
    from sortkd_cache.pipelines.train import TrainConfig, train

    out = root / f"{precision}-s{seed}"
    milestones = (round(epochs * 2 / 3), round(epochs * 5 / 6))
    result = train(
        TrainConfig(
            dataset="digits", student="digits_cnn_s", loss="ce", epochs=epochs,
            milestones=milestones, batch_size=64, seed=seed, precision=precision,
            device="cpu", progress=False, out=str(out),
        )
    )  # fmt: skip
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return {
        "top1": result.final_test_top1,
        "final_train_loss": rows[-1]["loss"],
        "epoch_seconds": statistics.median(r["seconds"] for r in rows),
    }


def _spread(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {sd:.2f}"


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs: dict[str, dict[int, dict[str, float]]] = {"fp32": {}, "bf16": {}}
    with tempfile.TemporaryDirectory(prefix="bench-precision-") as tmp:
        for seed in seeds:
            for precision in ("fp32", "bf16"):
                runs[precision][seed] = _run(Path(tmp), seed, precision, args.epochs)
                print(precision, seed, runs[precision][seed], file=sys.stderr, flush=True)
    top1 = {p: [runs[p][s]["top1"] for s in seeds] for p in runs}
    diff = [b - a for a, b in zip(top1["fp32"], top1["bf16"], strict=True)]
    result: dict[str, Any] = {
        "seeds": seeds,
        "epochs": args.epochs,
        "top1": top1,
        "top1_mean_std": {p: _spread(v) for p, v in top1.items()},
        "bf16_minus_fp32": diff,
        "final_train_loss": {p: [runs[p][s]["final_train_loss"] for s in seeds] for p in runs},
        "bf16_minus_fp32_mean_std": _spread(diff),
        "max_abs_difference": max(abs(d) for d in diff),
        "within_1_point": abs(statistics.mean(diff)) <= 1.0,
        "epoch_seconds_median": {
            p: statistics.median(runs[p][s]["epoch_seconds"] for s in seeds) for p in runs
        },
        "machine": machine(),
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
