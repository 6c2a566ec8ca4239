"""Issue 21 item 1: the sparse readers check what they read, as the dense ones do.

Each corruption is written through zarr (the chunk checksums stay valid, only the content is
wrong), or a chunk file is deleted. ``train`` (whole views, streamed, auto), ``sort`` and
``swap`` and the Python API stop with exit 2 (CorruptChunkError) and one line naming the
chunk, and the store (and any other input) is byte-identical afterwards; a directory or a
``.zip`` alike. Nothing made from a bad chunk is published: ``train`` has no checkpoint yet
(the first epoch reads the chunk), ``sort`` leaves its kind incomplete (resumable).
"""

from __future__ import annotations

import re
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result

import sortkd_cache as sk
from sortkd_cache.errors import CorruptChunkError
from sortkd_cache.testing import invoke, one_error_line, topk_store

from .conftest import tree_digest

CHUNK = 16  # samples per chunk of the hostile base store (64 samples, 2 views, 4 classes)


@pytest.fixture(scope="module")
def sparse_base(hostile_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hostile base store as top-2 sparse rows, raw + sort (copied). Read only."""
    return topk_store(hostile_base, tmp_path_factory.mktemp("sparse") / "top2.zarr", 2)


def _edit(
    kind: str, name: str, change: Callable[[np.ndarray], None], view: int = 0
) -> Callable[[Path], None]:
    """Rewrite chunk (block 1, ``view``) of ``logits/<kind>/<name>`` through zarr."""

    def apply(store: Path) -> None:
        import zarr

        arr = zarr.open_array(store / "logits" / kind / name, mode="r+")
        rows = np.asarray(arr[CHUNK : 2 * CHUNK, view])
        change(rows)
        arr[CHUNK : 2 * CHUNK, view] = rows
        arr = zarr.open_array(store / "logits" / kind / name, mode="r")
        assert np.array_equal(np.asarray(arr[CHUNK : 2 * CHUNK, view]), rows)

    return apply


def _delete(kind: str) -> Callable[[Path], None]:
    def apply(store: Path) -> None:
        (store / "logits" / kind / "ids" / "c" / "1" / "0" / "0").unlink()

    return apply


def _duplicate(rows: np.ndarray) -> None:
    rows[3, 1] = rows[3, 0]


def _out_of_range(rows: np.ndarray) -> None:
    rows[5, 0] = 200


def _unordered(kind: str) -> Callable[[Path], None]:
    """Row 2's kept entries reversed (ids and values together: the label stays consistent)."""

    def apply(store: Path) -> None:
        _edit(kind, "ids", lambda r: r.__setitem__(2, r[2, ::-1].copy()))(store)
        _edit(kind, "values", lambda r: r.__setitem__(2, r[2, ::-1].copy()))(store)

    return apply


def _inf(rows: np.ndarray) -> None:
    rows[4, 1] = np.inf


def damages(kind: str) -> dict[str, tuple[Callable[[Path], None], str]]:
    """name -> (the damage, what the one line says)."""
    where = "chunk (block 1, view 0)"
    return {
        "missing-ids": (_delete(kind), f"logits/{kind}/ids chunk c/1/0/0 is missing"),
        "duplicate": (_edit(kind, "ids", _duplicate), f"{where}: duplicate class id in row 3"),
        "out-of-range": (_edit(kind, "ids", _out_of_range), f"{where}: class id outside [0, 4)"),
        "unordered": (_unordered(kind), f"{where}: row 2: kept entries are not in rank order"),
        "inf-stats": (_edit(kind, "stats", _inf), f"{where}: non-finite stats in row 4"),
    }


def _zipped(store: Path) -> Path:
    out = store.with_suffix(".zip")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(store.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(store).as_posix())
    shutil.rmtree(store)
    return out


@pytest.fixture
def damaged(sparse_base: Path, tmp_path: Path) -> Callable[[str, str, bool], tuple[Path, str]]:
    def make(kind: str, damage: str, as_zip: bool = False) -> tuple[Path, str]:
        store = Path(shutil.copytree(sparse_base, tmp_path / "in" / "top2.zarr"))
        apply, message = damages(kind)[damage]
        apply(store)
        return (_zipped(store) if as_zip else store), message

    return make


TRAIN = ["--student", "digits_mlp", "--loss", "kd", "--epochs", "1", "--batch-size", "32"]


def _train(store: Path, run: Path, *extra: str) -> Result:
    """``train --cache store --logits sort`` into ``run`` on the CPU, quiet."""
    return invoke(
        "train", "--cache", str(store), *TRAIN, "--logits", "sort", *extra, "--device", "cpu",
        "--no-progress", "--out", str(run),
    )  # fmt: skip


@pytest.mark.parametrize("damage", sorted(damages("sort")))
@pytest.mark.parametrize("mode", ["view", "stream"])
def test_train_stops_on_a_bad_chunk(
    damaged: Callable[..., tuple[Path, str]], tmp_path: Path, damage: str, mode: str
) -> None:
    store, message = damaged("sort", damage)
    before = tree_digest(store.parent)
    run = tmp_path / "run"
    result = _train(store, run, "--soft-labels", mode)
    one_error_line(result, str(store), message)
    assert tree_digest(store.parent) == before
    assert not run.exists() or not (run / "checkpoint.pt").exists()


@pytest.mark.parametrize("mode", ["view", "stream"])
def test_a_run_stopped_in_a_later_epoch_resumes_once_the_store_is_repaired(
    sparse_base: Path, tmp_path: Path, mode: str
) -> None:
    """View 1 (epoch 2) is bad: epoch 1 is checkpointed, the stop is one line, and after the
    store is repaired ``--resume`` finishes the run."""
    store = Path(shutil.copytree(sparse_base, tmp_path / "in" / "top2.zarr"))
    _edit("sort", "ids", _duplicate, view=1)(store)
    run = tmp_path / "run"
    args = [
        "train", "--cache", str(store), *TRAIN, "--epochs", "2", "--milestones", "1",
        "--logits", "sort", "--soft-labels", mode, "--device", "cpu", "--no-progress",
        "--out", str(run),
    ]  # fmt: skip
    result = invoke(*args)
    one_error_line(result, str(store), "chunk (block 1, view 1): duplicate class id in row 3")
    assert (run / "checkpoint.pt").exists() and not (run / "summary.json").exists()
    shutil.rmtree(store)
    shutil.copytree(sparse_base, store)
    result = invoke(*args, "--resume")
    assert result.exit_code == 0, result.stderr
    assert (run / "summary.json").exists()


@pytest.mark.parametrize("damage", ["missing-ids", "duplicate"])
def test_train_auto_in_a_zip(
    damaged: Callable[..., tuple[Path, str]], tmp_path: Path, damage: str
) -> None:
    store, message = damaged("sort", damage, as_zip=True)
    before = tree_digest(store)
    run = tmp_path / "run"
    result = _train(store, run)
    one_error_line(result, str(store), message)
    assert tree_digest(store) == before


@pytest.mark.parametrize("damage", sorted(damages("raw")))
@pytest.mark.parametrize("method", ["sort", "swap"])
def test_sort_and_swap_publish_nothing_from_a_bad_chunk(
    damaged: Callable[..., tuple[Path, str]], tmp_path: Path, damage: str, method: str
) -> None:
    store, message = damaged("raw", damage)
    before = tree_digest(store.parent)
    out = tmp_path / "out.zarr"
    result = invoke(
        "sort", str(store), "--method", method, "--out", str(out), "--overwrite", "--no-progress"
    )
    one_error_line(result, str(store), message)
    assert tree_digest(store.parent) == before
    # --out is written in place and left resumable: the kind is never published
    assert not out.exists() or method not in sk.open_store(out).kinds()
    assert sorted(p.name for p in tmp_path.iterdir()) in (["in"], ["in", "out.zarr"])


def test_swap_in_place_leaves_the_kind_unpublished(
    damaged: Callable[..., tuple[Path, str]],
) -> None:
    store, message = damaged("raw", "duplicate")
    raw_before = tree_digest(store / "logits" / "raw")
    result = invoke("sort", str(store), "--method", "swap", "--no-progress")
    one_error_line(result, str(store), message)
    assert tree_digest(store / "logits" / "raw") == raw_before
    assert "swap" not in sk.open_store(store).kinds()


@pytest.mark.parametrize("as_zip", [False, True])
@pytest.mark.parametrize("damage", sorted(damages("sort")))
def test_the_python_api_refuses_a_bad_chunk(
    damaged: Callable[..., tuple[Path, str]], damage: str, as_zip: bool
) -> None:
    store, message = damaged("sort", damage, as_zip=as_zip)
    s = sk.open_store(store)
    logits = s.sparse_logits("sort")
    assert logits[:CHUNK, 0].ids.shape == (CHUNK, 2)  # the sound chunk before it reads
    with pytest.raises(CorruptChunkError, match=re.escape(message)):
        logits.read_block(1, 0)
    with pytest.raises(CorruptChunkError):
        logits[: 2 * CHUNK, :]
    batches = sk.EpochBatches.from_store(s, kind="sort", batch_size=32)
    with pytest.raises(CorruptChunkError, match=str(store)):
        for _ in batches.epoch(0):
            pass
    batches.close()


def test_a_sound_sparse_store_reads_and_trains(sparse_base: Path, tmp_path: Path) -> None:
    """The checks refuse nothing a sound store holds (every kind, every chunk, fancy reads)."""
    s = sk.open_store(sparse_base)
    for kind in s.kinds():
        arr = s.sparse_logits(kind)
        whole = arr[:, :]
        assert whole.ids.shape == (64, 2, 2)
        assert np.array_equal(arr[[3, 40], 1].ids, whole.ids[[3, 40], 1])
        assert np.array_equal(arr[7].values, whole.values[7])
    result = _train(sparse_base, tmp_path / "run", "--soft-labels", "stream")
    assert result.exit_code == 0, result.stderr
