"""The top-level package: every public name resolves (lazily, without torch until used), and
the sparse names give a user's own loop what the train stage does."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import sortkd_cache as sk

PROBE = """
import json, sys
import sortkd_cache as sk
before = sorted(m for m in ("torch", "zarr") if m in sys.modules)
spec = sk.SparseSpec(k=3, num_classes=10)
print(json.dumps({"before": before, "k": spec.k,
                  "torch_after_spec": "torch" in sys.modules}))
"""


def test_every_public_name_resolves_and_is_listed_once() -> None:
    assert len(set(sk.__all__)) == len(sk.__all__)
    for name in sk.__all__:
        assert getattr(sk, name) is not None, name
    assert set(sk.__all__) <= set(dir(sk))
    with pytest.raises(AttributeError, match="no attribute 'compress'"):
        sk.compress  # noqa: B018 - the public name is compress_topk


def test_import_and_the_sparse_format_need_no_torch() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report == {"before": [], "k": 3, "torch_after_spec": False}


def test_sparse_names_round_trip_like_the_sparse_package() -> None:
    """compress_topk -> apply_sparse -> SparseTeacher -> compute_sparse_loss, through sk."""
    import torch

    from sortkd_cache import losses, sparse

    assert sk.compress_topk is sparse.compress and sk.SparseTeacher is losses.SparseTeacher
    rng = np.random.default_rng(0)
    z = rng.normal(size=(16, 10)).astype(np.float16)
    y = rng.integers(0, 10, size=16)
    spec = sk.SparseSpec(k=4, num_classes=10)
    rows = sk.compress_topk(z, y, spec)
    assert isinstance(rows, sk.SparseRows) and rows.ids.shape == (16, 4)
    sorted_rows = sk.apply_sparse("sort", rows, y)
    assert np.array_equal(sorted_rows.ids[:, 0].astype(np.int64), y)  # the label leads
    teacher = sk.SparseTeacher.from_rows(spec, sorted_rows)
    student = torch.randn(16, 10)
    target = torch.from_numpy(y)
    loss, parts = sk.compute_sparse_loss(sk.make_loss("kd"), student, teacher, target, epoch=1)
    ref, _ = losses.compute_loss(sk.make_loss("kd"), student, teacher, target, epoch=1)
    assert torch.isfinite(loss) and float(loss) == float(ref) and set(parts) == {"ce", "kd"}
