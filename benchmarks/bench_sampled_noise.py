"""Why hybrid sampled rows gain little at T = 4 on the demo's teacher: head mass, noise, signal.

Given a dense store (``--store``, required: the demo's, e.g. the ``store.zarr`` that ``make
demo`` writes; making its teacher here would cost several minutes of CPU), over one view's
rows (view 0 by default) of each dense kind (``sort``, the rows the demo's KD sort students
read, and ``raw``), at the proposal temperature T0 (4 by default), with ``p`` the teacher's
softmax at T0, the head the top H classes of each row and ``q0`` the rest renormalised
(``docs/sparse.md``, "Hybrid rows"):

* head mass: the mean of ``1 - m0`` over the rows, ``m0`` the tail mass, for H = 4, 5, 10;
* gradient noise per draw: the mean of ``m0² (1 - Σ q0²)`` (H = 0: ``1 - Σ p²``, the plain
  kind), so that ``E‖p̂ - p‖² = noise / S`` for S draws (KD's gradient at T0 for any student
  is ``p̂ - p`` away from the dense one's, up to the student-independent factor);
* signal: the mean of ``‖p - uniform‖²``, the teacher's deviation from uniform at T0 (the
  gradient a uniform student starts from);
* draws for noise/S to fall to the signal: ``noise / signal``, rounded up, and the bytes per
  sample-view of that row (``SampledSpec.bytes_per_row``, float16, the default recorded
  temperatures), against the dense float16 row's ``2·C``.

Every figure is a function of each row's multiset of probabilities, so ``sort`` (a
permutation of each row: the label takes the row's largest logit) and ``raw`` give the same
figures; both are printed as a check. Prints a table and writes
``benchmarks/results/sampled_noise.json`` (``--out``). Numpy only, seconds on the demo's 2000
rows. Not in ``run_all.py``: it needs the demo's store (``--store``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine

HEADS = (0, 4, 5, 10)
RESULTS = Path(__file__).resolve().parent / "results" / "sampled_noise.json"


def softmax(z: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise softmax of ``z / T`` in float64."""
    s = z.astype(np.float64) / temperature
    s -= s.max(axis=1, keepdims=True)
    e = np.exp(s)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def head_stats(p: np.ndarray, head: int) -> dict[str, float]:
    """Mean head mass ``1 - m0`` and mean noise per draw ``m0² (1 - Σ q0²)`` for the top H."""
    desc = -np.sort(-p, axis=1)
    tail = desc[:, head:]
    m0 = tail.sum(axis=1)
    q0 = tail / m0[:, None]
    noise = m0**2 * (1.0 - (q0**2).sum(axis=1))
    return {"head_mass": float((1.0 - m0).mean()), "noise_per_draw": float(noise.mean())}


def bytes_per_row(draws: int, head: int, num_classes: int) -> int:
    from sortkd_cache.sparse import SampledSpec

    return int(SampledSpec(draws=draws, num_classes=num_classes, head=head).bytes_per_row)


def measure(z: np.ndarray, temperature: float) -> dict[str, Any]:
    """Every figure of one kind's rows ``z`` [N, C] at T0."""
    p = softmax(z, temperature)
    c = p.shape[1]
    signal = float(((p - 1.0 / c) ** 2).sum(axis=1).mean())
    heads: dict[str, Any] = {}
    for h in HEADS:
        st = head_stats(p, h)
        need = max(1, math.ceil(st["noise_per_draw"] / signal))
        draws = min(need, c - h)
        st.update(draws_to_signal=need, bytes_at_that=bytes_per_row(draws, h, c))
        heads[str(h)] = st
    return {"rows": int(p.shape[0]), "signal": signal, "heads": heads, "dense_bytes": 2 * c}


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, help="a dense store (the demo's store.zarr)")
    ap.add_argument("--view", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=4.0, help="T0 (default 4)")
    ap.add_argument("--kinds", default="sort,raw", help="dense kinds, comma-separated")
    ap.add_argument("--out", type=Path, default=RESULTS)
    return ap.parse_args(argv)


def _print(kind: str, res: dict[str, Any]) -> None:
    print(f"\n{kind}: {res['rows']} rows, signal ||p - uniform||^2 = {res['signal']:.4f}")
    print(f"   H | head mass | noise/draw | draws to signal | bytes (dense {res['dense_bytes']})")
    for h, st in res["heads"].items():
        print(
            f"{h:>4} | {st['head_mass']:9.3f} | {st['noise_per_draw']:10.3f} | "
            f"{st['draws_to_signal']:15d} | {st['bytes_at_that']:5d}"
        )


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from sortkd_cache.data import read_view_logits
    from sortkd_cache.errors import ConfigError
    from sortkd_cache.store import open_store

    store = open_store(args.store)
    if not 0 <= args.view < store.num_views:
        last = store.num_views - 1
        raise ConfigError(f"--view {args.view} is not a view of the store (0..{last})")
    if not (math.isfinite(args.temperature) and args.temperature > 0):
        raise ConfigError(f"--temperature {args.temperature:g} must be finite and > 0")
    out: dict[str, Any] = {
        "store": str(args.store), "view": args.view, "temperature": args.temperature,
        "machine": machine(), "kinds": {},
    }  # fmt: skip
    for kind in args.kinds.split(","):
        res = measure(read_view_logits(store, kind, args.view), args.temperature)
        out["kinds"][kind] = res
        _print(kind, res)
    return out


def main(argv: list[str] | None = None) -> int:
    from sortkd_cache.errors import SortKDError

    args = _args(argv)
    try:
        out = _run(args)
    except SortKDError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
