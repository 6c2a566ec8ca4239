"""Shared benchmark helpers: timing, medians, a synthetic store, machine description."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def synthetic_labels(n: int, c: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, c, size=n)


def synthetic_logits(
    labels: np.ndarray, c: int, accuracy: float, seed: int, dtype: str
) -> np.ndarray:
    """Teacher-like logits [n, c]: the label holds the maximum in about ``accuracy`` of rows.

    In the other rows the label sits at rank 1 + Geometric(0.4) (mean 2.5, capped at C - 1),
    as with a real teacher, whose wrong answers usually rank the truth second or third.
    """
    rng = np.random.default_rng(seed)
    n = labels.shape[0]
    z = rng.normal(0.0, 2.0, size=(n, c)).astype(np.float32)
    order = np.argsort(-z, axis=1)
    wrong = rng.random(n) >= accuracy
    rank = np.where(wrong, np.minimum(rng.geometric(0.4, n), c - 1), 0)
    rows = np.arange(n)
    target = order[rows, rank]
    at_label = z[rows, labels].copy()
    z[rows, labels] = z[rows, target]
    z[rows, target] = at_label
    return z.astype(dtype)


def synthetic_store(
    path: Path,
    n: int,
    v: int,
    c: int,
    *,
    accuracy: float = 0.85,
    dtype: str = "float16",
    chunk_samples: int | None = None,
) -> Any:
    """A complete store with synthetic raw logits (no teacher run), for stage benchmarks."""
    from sortkd_cache.store import (
        DatasetRecord,
        StoreMeta,
        TeacherRecord,
        choose_chunk_samples,
        create_store,
        open_store,
    )

    chunk = chunk_samples or choose_chunk_samples(n, c, np.dtype(dtype).itemsize)
    labels = synthetic_labels(n, c)
    meta = StoreMeta(
        num_samples=n,
        num_views=v,
        num_classes=c,
        chunk_samples=chunk,
        dtype=dtype,
        seed=0,
        dataset=DatasetRecord(
            name="synthetic",
            spec=f"synthetic:{n}:{c}",
            split="train",
            fingerprint="sha256:synthetic",
            num_samples=n,
            num_classes=c,
            channels=3,
            image_size=(32, 32),
            mean=(0.5,) * 3,
            std=(0.25,) * 3,
        ),
        teacher=TeacherRecord(arch="synthetic", sha256=None, init="random"),
        augment={"name": "none"},
        tool_version="bench",
        created="bench",
    )
    store = create_store(path, meta, labels, overwrite=True)
    store.create_kind("raw", dtype, overwrite=True)
    zeros = np.zeros((chunk, 5), np.int32)
    for view in range(v):
        z = synthetic_logits(labels, c, accuracy, view + 1, dtype)
        for block in range(store.num_blocks):
            start, stop = store.block_bounds(block)
            store.write_chunk("raw", block, view, z[start:stop], params=zeros[: stop - start])
    store.set_kind_attrs("raw", {"kind": "raw", "complete": True})
    store.write_meta(store.meta.replace(complete=True))
    return open_store(path)
