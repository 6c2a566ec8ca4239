"""The store contract: create/open, labels, params, logits slicing, refusals, checksums."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sortkd_cache as sk
from sortkd_cache.errors import (
    CorruptChunkError,
    LogitsKindError,
    OutputError,
    SchemaError,
    StoreExistsError,
    StoreNotFoundError,
    StoreReadOnlyError,
)
from sortkd_cache.store import (
    SCHEMA_VERSION,
    CacheStore,
    DatasetRecord,
    StoreMeta,
    TeacherRecord,
    choose_chunk_samples,
    create_store,
    open_store,
)

pytestmark = pytest.mark.fast

N, V, C, S = 150, 3, 7, 64  # 3 blocks, the last one partial


def make_meta(dtype: str = "float32") -> StoreMeta:
    return StoreMeta(
        num_samples=N,
        num_views=V,
        num_classes=C,
        chunk_samples=S,
        dtype=dtype,
        seed=5,
        dataset=DatasetRecord(
            name="fake",
            spec=f"fake:{N}:{C}:8",
            split="train",
            fingerprint="sha256:abc",
            num_samples=N,
            num_classes=C,
            channels=3,
            image_size=(8, 8),
            mean=(0.5, 0.5, 0.5),
            std=(0.25, 0.25, 0.25),
        ),
        teacher=TeacherRecord(
            arch="resnet8", sha256="f" * 64, init="checkpoint", checkpoint="t.pt"
        ),
        augment={"name": "cifar", "kind": "crop", "pad": 4},
        tool_version="0.1.0",
        created="2025-01-01T00:00:00+00:00",
    )


def fill_store(path: Path, dtype: str = "float32") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A complete store written chunk by chunk as a stage would; returns (labels, params, z)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, C, N)
    params = rng.integers(0, 9, (N, V, 5)).astype(np.int32)
    z = rng.standard_normal((N, V, C)).astype(dtype)
    store = create_store(path, make_meta(dtype), labels)
    store.create_kind("raw", dtype)
    for b in range(store.num_blocks):
        start, stop = store.block_bounds(b)
        for v in range(V):
            store.write_chunk("raw", b, v, z[start:stop, v], params=params[start:stop, v], count=b)
    store.set_kind_attrs("raw", {"kind": "raw", "complete": True})
    store.write_meta(store.meta.replace(complete=True))
    return labels, params, z


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    path = tmp_path / "s.zarr"
    labels, params, z = fill_store(path)
    return path, labels, params, z


def edit_root_attrs(path: Path, **changes: object) -> None:
    zj = path / "zarr.json"
    doc = json.loads(zj.read_text())
    doc["attributes"]["sortkd_cache"].update(changes)
    zj.write_text(json.dumps(doc))


def test_create_open_round_trip(filled) -> None:
    path, labels, params, _ = filled
    store = sk.open_store(path)
    assert isinstance(store, CacheStore) and store.mode == "r"
    assert (store.num_samples, store.num_views, store.num_classes) == (N, V, C)
    assert store.meta == make_meta().replace(complete=True)
    assert store.labels.dtype == np.int64
    np.testing.assert_array_equal(store.labels, labels)
    for v in range(V):
        np.testing.assert_array_equal(store.params(v), params[:, v])
    np.testing.assert_array_equal(store.params(1, 10, 70), params[10:70, 1])
    assert store.kinds() == ["raw"]
    np.testing.assert_array_equal(store.progress("raw"), np.repeat(np.arange(3)[:, None], V, 1))


@pytest.mark.parametrize(
    "sel",
    [
        (Ellipsis,),
        (slice(None),),
        (5,),
        (slice(10, 100), 2),
        (slice(60, 70), slice(None), 3),
        (slice(None), 0, slice(2, 5)),
        (slice(None, None, 7),),
        (-1,),
        (slice(140, 150), -1, -1),
    ],
)
def test_logits_numpy_style_slicing(filled, sel: tuple[object, ...]) -> None:
    path, _, _, z = filled
    raw = open_store(path).logits("raw")
    assert raw.shape == (N, V, C) and raw.dtype == np.float32 and raw.ndim == 3
    assert len(raw) == N and raw.chunks == (S, 1, C)
    got = raw[sel if len(sel) > 1 else sel[0]]
    np.testing.assert_array_equal(got, z[sel if len(sel) > 1 else sel[0]])
    np.testing.assert_array_equal(np.asarray(raw), z)
    np.testing.assert_array_equal(raw.read_block(2, 1), z[128:150, 1])


def test_float16_store_keeps_its_dtype(tmp_path: Path) -> None:
    _, _, z = fill_store(tmp_path / "h.zarr", "float16")
    raw = open_store(tmp_path / "h.zarr").logits("raw")
    assert raw.dtype == np.float16
    assert raw[...].view(np.uint16).tobytes() == z.view(np.uint16).tobytes()


def test_every_array_is_checksummed_and_chunked_by_block_of_one_view(filled) -> None:
    path = filled[0]
    expected = {
        "labels": [S],
        "aug_params": [S, 1, 5],
        "logits/raw": [S, 1, C],
        "progress/raw": [1, 1],
    }
    for name, chunks in expected.items():
        doc = json.loads((path / name / "zarr.json").read_text())
        codecs = [c["name"] for c in doc["codecs"]]
        assert "crc32c" in codecs and "zstd" in codecs, (name, codecs)
        assert codecs[-1] == "crc32c"  # the checksum covers the compressed bytes
        assert doc["chunk_grid"]["configuration"]["chunk_shape"] == chunks


def test_newer_schema_is_refused(filled) -> None:
    path = filled[0]
    edit_root_attrs(path, schema=SCHEMA_VERSION + 1)
    with pytest.raises(SchemaError, match=f"schema {SCHEMA_VERSION + 1}") as info:
        open_store(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("array", ["labels", "aug_params"])
def test_missing_array_is_refused(filled, array: str) -> None:
    import shutil

    path = filled[0]
    shutil.rmtree(path / array)
    with pytest.raises(SchemaError, match=f"missing array '{array}'"):
        open_store(path)


def test_missing_logits_array_means_no_raw_kind(filled) -> None:
    import shutil

    path = filled[0]
    shutil.rmtree(path / "logits" / "raw")
    store = open_store(path)
    assert store.kinds() == []
    with pytest.raises(LogitsKindError, match="no complete 'raw' logits"):
        store.logits("raw")


def test_not_a_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match=r"nothing\.zarr"):
        open_store(tmp_path / "nothing.zarr")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "zarr.json").write_text(
        json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}})
    )
    with pytest.raises(SchemaError, match="not a sortkd-cache store"):
        open_store(tmp_path / "plain")


def test_deleted_logits_chunk_raises_corrupt_chunk(filled) -> None:
    path, _, _, z = filled
    (path / "logits" / "raw" / "c" / "1" / "2" / "0").unlink()  # block 1, view 2
    raw = open_store(path).logits("raw")
    np.testing.assert_array_equal(raw[:, :2], z[:, :2])  # other chunks still read
    np.testing.assert_array_equal(raw[:64, 2], z[:64, 2])
    with pytest.raises(CorruptChunkError, match="missing chunk"):
        raw[...]
    with pytest.raises(CorruptChunkError):
        raw[70, 2]
    with pytest.raises(CorruptChunkError):
        raw.read_block(1, 2)


def test_deleted_params_chunk_raises_corrupt_chunk(filled) -> None:
    path = filled[0]
    (path / "aug_params" / "c" / "0" / "1" / "0").unlink()
    store = open_store(path)
    store.params(0)
    with pytest.raises(CorruptChunkError, match="aug_params"):
        store.params(1)


def test_flipped_byte_fails_the_checksum(filled) -> None:
    path = filled[0]
    chunk = path / "logits" / "raw" / "c" / "0" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    raw = open_store(path).logits("raw")
    raw[64:, 0]
    with pytest.raises(CorruptChunkError, match="corrupted chunk"):
        raw[:10, 0]


def test_unknown_and_absent_kinds_are_refused(filled) -> None:
    store = open_store(filled[0])
    with pytest.raises(LogitsKindError, match="unknown logits kind 'soft'"):
        store.logits("soft")
    with pytest.raises(LogitsKindError, match="no complete 'sort' logits"):
        store.logits("sort")


def test_incomplete_kind_is_not_readable(tmp_path: Path) -> None:
    store = create_store(tmp_path / "x.zarr", make_meta(), np.zeros(N, dtype=np.int64))
    store.create_kind("raw", "float32")
    assert store.kinds() == []
    assert (store.progress("raw") == -1).all()
    with pytest.raises(LogitsKindError, match="raw"):
        store.logits("raw")


def test_read_only_store_refuses_writes(filled) -> None:
    store = open_store(filled[0])
    with pytest.raises(StoreReadOnlyError, match="read-only"):
        store.write_meta(store.meta)
    with pytest.raises(StoreReadOnlyError):
        store.write_chunk("raw", 0, 0, np.zeros((S, C), np.float32))


def test_existing_store_is_replaced_only_with_overwrite(filled) -> None:
    path, labels, _, _ = filled
    with pytest.raises(StoreExistsError, match="--overwrite"):
        create_store(path, make_meta(), labels)
    assert open_store(path).kinds() == ["raw"]  # untouched
    store = create_store(path, make_meta().replace(seed=9), labels, overwrite=True)
    assert store.meta.seed == 9
    assert open_store(path).kinds() == []


def test_overwrite_never_deletes_a_directory_that_is_not_a_store(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "thesis.tex").write_text("precious")
    with pytest.raises(OutputError, match="not a sortkd-cache store"):
        create_store(target, make_meta(), np.zeros(N, dtype=np.int64), overwrite=True)
    assert (target / "thesis.tex").read_text() == "precious"


def test_labels_outside_the_classes_are_reported(filled) -> None:
    path = filled[0]
    store = open_store(path, mode="r+")
    store.raw_array("labels")[3] = C
    with pytest.raises(SchemaError, match=f"label {C} of sample 3"):
        open_store(path).labels  # noqa: B018


def test_zip_copy_reads_the_same(filled, tmp_path: Path) -> None:
    path, labels, params, z = filled
    archive = tmp_path / "s.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for root, _, files in os.walk(path):
            for name in files:
                full = Path(root) / name
                zf.write(full, full.relative_to(path).as_posix())
    store = open_store(archive)
    np.testing.assert_array_equal(store.labels, labels)
    np.testing.assert_array_equal(store.params(2), params[:, 2])
    np.testing.assert_array_equal(store.logits("raw")[...], z)
    with pytest.raises(StoreReadOnlyError, match="read-only"):
        open_store(archive, mode="r+")


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**7), st.integers(1, 30_000), st.sampled_from([2, 4]))
def test_default_chunk_rows(n: int, c: int, itemsize: int) -> None:
    rows = choose_chunk_samples(n, c, itemsize)
    assert 1 <= rows <= n
    assert rows == n or rows % 64 == 0
    if rows > 64:  # about 2 MiB or less per chunk
        assert rows * c * itemsize <= 1 << 21
