"""Issue 21 item 3: ``copy --views`` on a sparse store carries every per-view array (ids,
values, stats and the fidelity sums), and its errors never point at a removed (temporary)
path. The source is unchanged either way."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from sortkd_cache.testing import invoke, one_error_line, small_dump

from .conftest import tree_digest

VIEWS = [2, 0]


@pytest.fixture(scope="module")
def sparse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 views of top-3 rows, fidelity recorded at dump time (2 blocks)."""
    out = tmp_path_factory.mktemp("copyviews") / "top3.zarr"
    return small_dump(out, dataset="fake:64:10:8", views=3, chunk_samples=32, topk=3)


def test_copy_views_of_a_sparse_store_carries_every_per_view_array(
    sparse: Path, tmp_path: Path
) -> None:
    import sortkd_cache as sk

    before = tree_digest(sparse)
    dst = tmp_path / "two.zarr"
    result = invoke("copy", str(sparse), str(dst), "--views", "2,0", "--no-progress")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("copied "), result.stdout
    assert "destination verified" in result.stdout
    src, out = sk.open_store(sparse), sk.open_store(dst)
    assert sk.verify_store(dst).sound
    for name in ("ids", "values", "stats", "fidelity"):
        old = np.asarray(src.raw_array(f"logits/raw/{name}")[...])
        new = np.asarray(out.raw_array(f"logits/raw/{name}")[...])
        np.testing.assert_array_equal(new, old[:, VIEWS], err_msg=name)
    per_view = src.kind_attrs("raw")["fidelity"]["per_view"]
    assert out.kind_attrs("raw")["fidelity"]["per_view"] == [per_view[v] for v in VIEWS]
    assert tree_digest(sparse) == before


def test_a_failed_copy_views_names_no_removed_path(
    sparse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sortkd_cache.store import Problem, VerifyReport, _copy_writers

    def failing(location: object, **_: object) -> VerifyReport:
        return VerifyReport(str(location), (Problem("checksum", "injected damage", "labels"),))

    monkeypatch.setattr(_copy_writers, "verify_store", failing)  # the published check fails
    before = tree_digest(sparse)
    dst = tmp_path / "two.zarr"
    result = invoke("copy", str(sparse), str(dst), "--views", "2,0", "--no-progress")
    line = one_error_line(result, f"'{sparse}'", "does not verify", "nothing was published")
    for path in re.findall(r"(/[^\s'`]+)", line):
        assert Path(path).exists(), f"{path} (named in the error) does not exist: {line}"
    assert list(tmp_path.iterdir()) == []  # no DST, no private build left beside it
    assert tree_digest(sparse) == before
