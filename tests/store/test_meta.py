"""The provenance record (root attributes): round trips, schema refusal, validation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sortkd_cache.errors import SchemaError
from sortkd_cache.store import SCHEMA_VERSION, DatasetRecord, StoreMeta, TeacherRecord

pytestmark = pytest.mark.fast

names = st.text(min_size=1, max_size=12)
counts = st.integers(min_value=1, max_value=10**7)
floats = st.floats(min_value=0.01, max_value=10.0, allow_nan=False)


@st.composite
def dataset_records(draw: st.DrawFn) -> DatasetRecord:
    channels = draw(st.integers(1, 4))
    return DatasetRecord(
        name=draw(names),
        spec=draw(names),
        split=draw(st.sampled_from(["train", "test"])),
        fingerprint="sha256:" + draw(st.text("0123456789abcdef", min_size=64, max_size=64)),
        num_samples=draw(counts),
        num_classes=draw(st.integers(2, 1000)),
        channels=channels,
        image_size=draw(st.none() | st.tuples(st.integers(8, 512), st.integers(8, 512))),
        mean=tuple(draw(st.lists(floats, min_size=channels, max_size=channels))),
        std=tuple(draw(st.lists(floats, min_size=channels, max_size=channels))),
    )


@st.composite
def teacher_records(draw: st.DrawFn) -> TeacherRecord:
    init = draw(st.sampled_from(["checkpoint", "random"]))
    ckpt = init == "checkpoint"
    return TeacherRecord(
        arch=draw(names),
        sha256=draw(st.text("0123456789abcdef", min_size=64, max_size=64)) if ckpt else None,
        init=init,
        checkpoint=draw(names) if ckpt else None,
    )


@st.composite
def metas(draw: st.DrawFn) -> StoreMeta:
    views = draw(st.integers(1, 64))
    return StoreMeta(
        num_samples=draw(counts),
        num_views=views,
        num_classes=draw(st.integers(2, 1000)),
        chunk_samples=draw(counts),
        dtype=draw(st.sampled_from(["float16", "float32"])),
        seed=draw(st.integers(0, 2**62)),
        dataset=draw(dataset_records()),
        teacher=draw(teacher_records()),
        augment={"name": draw(names), "kind": "crop", "pad": draw(st.integers(0, 8))},
        tool_version="0.1.0",
        created="2025-01-01T00:00:00+00:00",
        complete=draw(st.booleans()),
        teacher_accuracy=tuple(draw(st.lists(st.floats(0, 1), min_size=views, max_size=views))),
        dump_seconds=draw(st.none() | st.floats(0, 1e6)),
    )


def sample_meta(**changes: Any) -> StoreMeta:
    meta = StoreMeta(
        num_samples=100,
        num_views=4,
        num_classes=10,
        chunk_samples=64,
        dtype="float16",
        seed=0,
        dataset=DatasetRecord(
            name="fake",
            spec="fake:100:10:8",
            split="train",
            fingerprint="sha256:00",
            num_samples=100,
            num_classes=10,
            channels=3,
            image_size=(8, 8),
            mean=(0.5, 0.5, 0.5),
            std=(0.2, 0.2, 0.2),
        ),
        teacher=TeacherRecord(arch="resnet8", sha256=None, init="random"),
        augment={"name": "cifar", "kind": "crop", "pad": 4},
        tool_version="0.1.0",
        created="2025-01-01T00:00:00+00:00",
    )
    return meta.replace(**changes)


@settings(max_examples=60, deadline=None)
@given(metas())
def test_meta_round_trips_through_json(meta: StoreMeta) -> None:
    d = meta.to_dict()
    assert d["schema"] == 3  # every store is written with metadata checksums (schema 3)
    back = StoreMeta.from_dict(json.loads(json.dumps(d)))
    assert back == meta
    assert back.to_dict() == d


@settings(max_examples=40, deadline=None)
@given(dataset_records(), teacher_records())
def test_records_round_trip(ds: DatasetRecord, t: TeacherRecord) -> None:
    assert DatasetRecord.from_dict(json.loads(json.dumps(ds.to_dict()))) == ds
    assert TeacherRecord.from_dict(json.loads(json.dumps(t.to_dict()))) == t


def test_to_dict_has_the_documented_provenance() -> None:
    d = sample_meta().to_dict()
    for key in ("schema", "num_samples", "num_views", "num_classes", "seed", "augment"):
        assert key in d
    assert {"name", "fingerprint"} <= set(d["dataset"])
    assert {"arch", "sha256", "init"} <= set(d["teacher"])
    assert {"tool_version", "created"} <= set(d)


def test_newer_schema_is_refused_naming_it() -> None:
    d = sample_meta().to_dict()
    d["schema"] = SCHEMA_VERSION + 1
    with pytest.raises(SchemaError, match=f"schema {SCHEMA_VERSION + 1} is newer"):
        StoreMeta.from_dict(d)


@pytest.mark.parametrize("bad", [0, -1, "1", True, None])
def test_bad_schema_values_are_refused(bad: object) -> None:
    d = sample_meta().to_dict()
    d["schema"] = bad
    with pytest.raises(SchemaError, match="schema"):
        StoreMeta.from_dict(d)


@pytest.mark.parametrize("key", ["num_samples", "num_views", "num_classes", "seed", "dataset"])
def test_missing_key_is_named(key: str) -> None:
    d = sample_meta().to_dict()
    del d[key]
    with pytest.raises(SchemaError, match=f"missing '{key}'"):
        StoreMeta.from_dict(d)


def test_missing_nested_key_is_named_with_its_path() -> None:
    d = sample_meta().to_dict()
    del d["dataset"]["fingerprint"]
    with pytest.raises(SchemaError, match=r"'dataset\.fingerprint'"):
        StoreMeta.from_dict(d)
    d = sample_meta().to_dict()
    del d["teacher"]["arch"]
    with pytest.raises(SchemaError, match=r"'teacher\.arch'"):
        StoreMeta.from_dict(d)


@pytest.mark.parametrize(("key", "value"), [("num_views", "4"), ("num_views", True), ("dtype", 16)])
def test_bad_types_are_named(key: str, value: object) -> None:
    d = sample_meta().to_dict()
    d[key] = value
    with pytest.raises(SchemaError, match=f"'{key}' has bad value"):
        StoreMeta.from_dict(d)


def test_replace_returns_a_new_frozen_meta() -> None:
    meta = sample_meta()
    done = meta.replace(complete=True, teacher_accuracy=(0.5, 0.5, 0.5, 0.5))
    assert done.complete and not meta.complete
    assert done.teacher_accuracy == (0.5, 0.5, 0.5, 0.5)
    with pytest.raises(AttributeError):
        meta.seed = 1  # type: ignore[misc]
