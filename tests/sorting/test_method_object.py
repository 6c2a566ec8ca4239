"""A sort method is one registered object: a new one is what ``sort --method NEW`` writes, what
the online teacher applies, what the kinds and options accept, and its sparse form (or its
declared refusal) is what a top-K store gets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sortkd_cache as sk
from sortkd_cache.errors import ConfigError
from sortkd_cache.sorting import LOGIT_KINDS, METHODS, SortMethod, get_method, register_method
from sortkd_cache.sparse import SparseSpec, apply_sparse, compress
from sortkd_cache.store import LOGIT_KINDS as STORE_KINDS
from sortkd_cache.testing import invoke

pytestmark = pytest.mark.fast

MakeStore = Callable[..., Path]
FAST: dict[str, Any] = {"teacher": "digits_mlp", "views": 2}


def to_min_2d(z: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A third method: the label's value and the row minimum's are exchanged."""
    out = z.copy()
    rows = np.arange(len(y))
    low = z.argmin(axis=1)
    out[rows, low], out[rows, y] = z[rows, y], z[rows, low]
    return out


def to_min_torch(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = torch.from_numpy(to_min_2d(z.cpu().numpy(), y.cpu().numpy()))
    return out.to(z.device)


@pytest.fixture
def to_min() -> Iterator[SortMethod]:
    saved = METHODS.snapshot()
    method = register_method(SortMethod("to_min", to_min_2d, f"{__name__}:to_min_torch"))
    try:
        yield method
    finally:
        METHODS.restore(saved)


def test_the_builtin_methods_carry_every_part() -> None:
    for name in ("sort", "swap"):
        m = get_method(name)
        assert m.name == name and m.sparse is not None
        assert (m.relabel is not None) == (name == "sort")  # swap declares a refusal
        assert callable(m.torch_fn())
        z = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32)
        y = np.arange(6) % 5
        applied = m.with_stats(z, y)
        assert np.array_equal(applied.out, m(z, y))
        assert np.array_equal(applied.rank, sk.label_rank(z, y))
        assert np.array_equal(applied.top, z.argmax(axis=1))


def test_a_new_method_is_seen_by_the_kinds_and_options(to_min: SortMethod) -> None:
    assert "to_min" in LOGIT_KINDS and "to_min" in STORE_KINDS
    for command in ("train", "sort"):
        assert "to_min" in invoke(command, "--help").output
    METHODS.restore({k: v for k, v in METHODS.snapshot().items() if k != "to_min"})
    assert "to_min" not in LOGIT_KINDS
    assert "to_min" not in invoke("train", "--help").output


def test_sort_writes_the_new_methods_results(make_store: MakeStore, to_min: SortMethod) -> None:
    path = make_store("d.zarr", **FAST)
    r = invoke("sort", str(path), "--method", "to_min")
    assert r.exit_code == 0, r.output
    store = sk.open_store(path)
    assert "to_min" in store.kinds()
    y = np.asarray(store.labels)
    for v in range(store.num_views):
        raw = np.asarray(store.logits("raw")[:, v])
        assert np.array_equal(np.asarray(store.logits("to_min")[:, v]), to_min_2d(raw, y))
        # what the online teacher applies to a batch: the same object, numpy or torch
        zt, yt = torch.from_numpy(raw), torch.from_numpy(y)
        assert torch.equal(get_method("to_min")(zt, yt), torch.from_numpy(to_min_2d(raw, y)))


def test_a_method_without_a_sparse_form_is_refused_in_one_line(
    make_store: MakeStore, to_min: SortMethod
) -> None:
    path = make_store("s.zarr", topk=3, **FAST)
    r = invoke("sort", str(path), "--method", "to_min")
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert "'to_min' has no sparse form" in lines[0]
    spec = SparseSpec(k=3, num_classes=5, dtype="float32")
    z = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    rows = compress(z, np.arange(4), spec)
    with pytest.raises(ConfigError, match="no sparse form"):
        apply_sparse("to_min", rows, np.arange(4))
