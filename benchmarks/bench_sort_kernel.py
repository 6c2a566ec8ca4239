"""Benchmark: the sorting-mechanism kernel against the per-batch online formulation.

The baseline is the paper's online approach, applied to every row of a batch: one
``torch.sort`` of the values, one ``torch.sort`` of a key that puts the label first, and a
scatter. ``sortkd_cache.sorting.sort_logits`` only touches rows whose label is beaten and,
in those, only the classes ranked above the label.

Inputs are float16 teacher-like logits: Gaussian logits with the label's logit raised by a
margin calibrated so that the label is the row maximum in about 85% of rows (a teacher with
85% top-1 accuracy); a wrong row's label is then usually near the top, as with real teachers.
The tie-heavy stress case quantises the logits to halves (so most rows tie, and most hold
both +0.0 and -0.0), puts the label on the maximum in 70% of rows and leaves it at a random
rank in the others.

Each repeat runs every contender once, interleaved (ours, ours on a torch tensor, the
baseline), so that load changes on a shared machine hit all alike; the figures are medians.

``sort_logits`` on a CPU tensor runs the numpy kernel on a zero-copy view (``torch_cpu``), and
it is single-threaded (the ``sort`` stage parallelises across chunks with Dask), while the
baseline's ``torch.sort`` uses every intra-op thread: the speed-up shrinks on many-core
machines (``threads`` in the output). CUDA timings synchronise around each call.

Run: ``python benchmarks/bench_sort_kernel.py`` (prints JSON); ``run(repeats)`` returns it.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from sortkd_cache.sorting import label_rank, sort_logits

SHAPES = ((200_000, 100), (20_000, 1_000))
ACCURACY = 0.85
STRESS_ACCURACY = 0.70


def baseline_sort(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The online per-batch formulation: two sorts and a scatter over every row."""
    values = torch.sort(z, dim=1, descending=True).values
    key = z.clone()
    key[torch.arange(z.shape[0], device=z.device), y] = float("inf")  # the label first
    order = torch.sort(key, dim=1, descending=True).indices
    return torch.empty_like(z).scatter_(1, order, values)


def make_logits(
    n: int, c: int, accuracy: float = ACCURACY, seed: int = 0, stress: bool = False
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """float16 logits [n, c] and labels [n]; the label is the row maximum in ~accuracy rows."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, c), dtype=np.float32) * 2.0
    y = rng.integers(0, c, n)
    rows = np.arange(n)
    if stress:  # quantised to halves; the label on the maximum in `accuracy` rows
        z = np.round(z * 2.0) / 2.0  # keeps the sign of small values: -0.0 and +0.0
        ok = rng.random(n) < accuracy
        z[rows[ok], y[ok]] = z[ok].max(axis=1) + 0.5
        return z.astype(np.float16), y
    # Raise the label by the margin that makes it the maximum in `accuracy` of the rows.
    others = z.copy()
    others[rows, y] = -np.inf
    gap = others.max(axis=1) - z[rows, y]
    margin = float(np.quantile(gap, accuracy))
    z[rows, y] += margin
    return z.astype(np.float16), y


def _interleaved(
    contenders: dict[str, Callable[[], Any]], repeats: int, sync: Callable[[], None]
) -> tuple[dict[str, float], dict[str, Any]]:
    """Median wall time of each contender over ``repeats`` interleaved rounds after a warm-up,
    and the warm-up's results."""
    results = {}
    for name, fn in contenders.items():
        results[name] = fn()
        sync()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}, results


def _no_sync() -> None:
    return None


def _agreement(ours: torch.Tensor, base: torch.Tensor, z: torch.Tensor) -> dict[str, Any]:
    """Bitwise agreement of the baseline with the kernel, over all rows and tie-free rows."""
    same = (ours.view(torch.int16) == base.view(torch.int16)).all(dim=1)
    sorted_z = torch.sort(z, dim=1).values
    tie_free = (sorted_z[:, 1:] != sorted_z[:, :-1]).all(dim=1)
    return {
        "rows_equal_fraction": float(same.float().mean()),
        "tie_free_rows": int(tie_free.sum()),
        "tie_free_rows_equal": bool(same[tie_free].all()),
    }


def _as_tensor(x: torch.Tensor | np.ndarray[Any, Any]) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(x)


def _case(n: int, c: int, repeats: int, stress: bool) -> dict[str, Any]:
    z, y = make_logits(n, c, STRESS_ACCURACY if stress else ACCURACY, stress=stress)
    zt, yt = torch.from_numpy(z), torch.from_numpy(y)
    ranks = label_rank(z, y)
    wrong = ranks > 0
    res: dict[str, Any] = {
        "shape": [n, c],
        "dtype": "float16",
        "label_is_max_fraction": float(1.0 - wrong.mean()),
        "wrong_rows_mean_rank": float(ranks[wrong].mean()) if wrong.any() else 0.0,
    }
    seconds, out = _interleaved(
        {
            "numpy": lambda: sort_logits(z, y),
            "torch_cpu": lambda: sort_logits(zt, yt),
            "baseline_torch_cpu": lambda: baseline_sort(zt, yt),
        },
        repeats,
        _no_sync,
    )
    ours = _as_tensor(out["numpy"])
    t_base = seconds["baseline_torch_cpu"]
    res["seconds"] = seconds
    res["speedup"] = {
        "numpy": t_base / seconds["numpy"],
        "torch_cpu": t_base / seconds["torch_cpu"],
    }
    res["torch_equals_numpy"] = _bits_equal(_as_tensor(out["torch_cpu"]), ours)
    res["baseline_agreement"] = _agreement(ours, _as_tensor(out["baseline_torch_cpu"]), zt)
    if torch.cuda.is_available():
        zc, yc = zt.cuda(), yt.cuda()
        cuda, out_c = _interleaved(
            {
                "torch_cuda": lambda: sort_logits(zc, yc),
                "baseline_torch_cuda": lambda: baseline_sort(zc, yc),
            },
            repeats,
            torch.cuda.synchronize,
        )
        res["seconds"].update(cuda)
        res["speedup"]["torch_cuda"] = cuda["baseline_torch_cuda"] / cuda["torch_cuda"]
        res["cuda_equals_numpy"] = _bits_equal(_as_tensor(out_c["torch_cuda"]).cpu(), ours)
    return res


def _bits_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(torch.equal(a.view(torch.int16), b.view(torch.int16)))


def run(repeats: int = 5) -> dict[str, Any]:
    """Median seconds, speed-ups and agreement checks for every shape (teacher and stress)."""
    torch.manual_seed(0)
    cases = [_case(n, c, repeats, stress=False) for n, c in SHAPES]
    stress = [_case(n, c, repeats, stress=True) for n, c in SHAPES]
    return {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "repeats": repeats,
        "teacher": cases,
        "stress_tie_heavy": stress,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
