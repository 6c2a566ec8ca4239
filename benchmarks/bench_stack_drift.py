"""How far a stacked sweep ends from its members' solo runs over whole runs, and why.

Three sweeps of the same grid on one digits store (10 digits_cnn_s members: ce, kd, dkd x
raw, sort x seeds 0, 1; 2 epochs at batch 64 unless ``--epochs``):

* ``off``: unstacked, one torch thread (each member bit-identical to its solo run, tested);
* ``on``: stacked (``torch.func``, one vmapped forward; each member's own ``torch.optim``
  step), one torch thread;
* ``threads``: unstacked with two torch threads. Only the summation order of some CPU
  kernels changes: a pure rounding perturbation, the yardstick for the stacked drift.

For ``on`` and ``threads`` against ``off``: the largest absolute difference in weights, in
BatchNorm running statistics and in step losses, and how many members end at another test
top-1. A stacked drift of the size of the thread drift is rounding compounding over the run;
a much larger one would be a defect.

    python benchmarks/bench_stack_drift.py [--cache STORE] [--epochs 2] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine


def _sweep(store: str, out: Path, stack: str, epochs: int, threads: int) -> dict[str, Any]:
    import torch

    from sortkd_cache.checkpoint import load_state_dict
    from sortkd_cache.pipelines.sweep import sweep
    from sortkd_cache.pipelines.sweep._grid import SweepConfig, grid

    torch.set_num_threads(threads)
    options = {"cache": store, "epochs": epochs, "milestones": (), "batch_size": 64,
               "device": "cpu", "data_seed": 0}  # fmt: skip
    members = grid(options, out=str(out), students=["digits_cnn_s"], losses=["ce", "kd", "dkd"],
                   logits=["raw", "sort"], seeds=[0, 1])  # fmt: skip
    result = sweep(SweepConfig(out=str(out), members=members, stack=stack, progress=False))
    return {
        m.name: {
            "weights": load_state_dict(Path(m.cfg.out) / "model.safetensors"),
            "losses": result.results[m.name].step_losses,
            "top1": result.results[m.name].final_test_top1,
        }
        for m in members
    }


def _drift(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    weights = stats = losses = 0.0
    moved = 0
    for name, x in a.items():
        y = b[name]
        for k, t in x["weights"].items():
            if not t.is_floating_point():
                continue
            d = float((t.double() - y["weights"][k].double()).abs().max())
            if "running_" in k:
                stats = max(stats, d)
            else:
                weights = max(weights, d)
        losses = max(losses, max(abs(p - q) for p, q in zip(x["losses"], y["losses"], strict=True)))
        moved += x["top1"] != y["top1"]
    return {"weights": weights, "batchnorm_stats": stats, "step_losses": losses,
            "members_at_another_top1": moved, "members": len(a)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=None, help="a digits store with raw + sort logits")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-drift-"))
    store = args.cache
    if store is None:
        from bench_sweep import _store

        store = str(_store(root, "digits", "digits_cnn_l", 2, ("sort",)))
    off = _sweep(store, root / "off", "off", args.epochs, 1)
    on = _sweep(store, root / "on", "on", args.epochs, 1)
    threads = _sweep(store, root / "threads", "off", args.epochs, 2)
    out = {"machine": machine(), "epochs": args.epochs,
           "stacked_vs_unstacked": _drift(off, on),
           "two_threads_vs_one": _drift(off, threads)}  # fmt: skip
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
