"""The store's provenance record (root attributes), schema 3.

Everything a reader needs to trust a store lives here: what data it was made from (content
fingerprint, not paths), which teacher (architecture and weights sha256), how the views were
made (augmentation recipe and seed) and by which tool version.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sortkd_cache.errors import ConfigError, SchemaError
from sortkd_cache.sparse import QuantSpec, SampledSpec, SparseSpec, spec_of_record

__all__ = [
    "ATTRS_KEY",
    "CHECKSUM_SCHEMA",
    "DENSE_SCHEMA",
    "SCHEMA_VERSION",
    "SPARSE_SCHEMA",
    "DatasetRecord",
    "StoreMeta",
    "TeacherRecord",
]

#: Schema 1: dense logits only. Schema 2 adds the sparse (top-K) layout (``sparse`` record)
#: and the ``derivation`` record of ``copy``. Schema 3: every node (the root group, each
#: array, each sparse kind's group) carries a metadata checksum (:mod:`._integrity`); this
#: version writes schema 3 only, and reads 1 and 2 without checksums (verify warns).
DENSE_SCHEMA = 1
SPARSE_SCHEMA = 2
CHECKSUM_SCHEMA = 3
SCHEMA_VERSION = CHECKSUM_SCHEMA  # the newest this version reads, and the one it writes
ATTRS_KEY = "sortkd_cache"


def _require(d: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise SchemaError(f"store attributes: missing '{where}{key}'")
    value = d[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SchemaError(f"store attributes: '{where}{key}' has bad value {value!r}")
    return value


@dataclass(frozen=True)
class DatasetRecord:
    """Identity of the data a store was made from."""

    name: str
    spec: str
    split: str
    fingerprint: str
    num_samples: int
    num_classes: int
    channels: int
    image_size: tuple[int, int] | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    #: Where the data was, for the data kinds that live in a folder (``imagefolder``: the
    #: folder's absolute path when the store was made); None for the others and for stores
    #: made before it was recorded (readers then fall back to ``spec``'s folder name).
    location: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["image_size"] = list(self.image_size) if self.image_size is not None else None
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        if self.location is None:
            del d["location"]  # a store made before it existed keeps its exact record
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetRecord:
        w = "dataset."
        size = d.get("image_size")
        return cls(
            name=_require(d, "name", str, w),
            spec=_require(d, "spec", str, w),
            split=_require(d, "split", str, w),
            fingerprint=_require(d, "fingerprint", str, w),
            num_samples=_require(d, "num_samples", int, w),
            num_classes=_require(d, "num_classes", int, w),
            channels=_require(d, "channels", int, w),
            image_size=(int(size[0]), int(size[1])) if size is not None else None,
            mean=tuple(float(x) for x in _require(d, "mean", list, w)),
            std=tuple(float(x) for x in _require(d, "std", list, w)),
            location=_optional_str(d, "location", w),
        )


@dataclass(frozen=True)
class TeacherRecord:
    """Which teacher produced the raw logits."""

    arch: str
    sha256: str | None
    init: str  # "checkpoint" or "random" (tests and benchmarks only)
    checkpoint: str | None = None  # the weights file's name
    precision: str = "fp32"  # the forward's precision: fp32 (exact), bf16 or fp16 (autocast)
    #: What the teacher's forward saw of a view (``TeacherPreprocess.to_dict()``: mean, std,
    #: input_size, interpolation, source); None: the dataset's normalisation (stores made
    #: before it was recorded).
    preprocess: dict[str, Any] | None = None
    #: The weights file's absolute path when the store was made (``verify --recompute``
    #: uses it where it still holds weights of the recorded sha256); None: not recorded.
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for key in ("preprocess", "path"):
            if d[key] is None:
                del d[key]  # a store made before it existed keeps its exact record
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TeacherRecord:
        w = "teacher."
        sha = d.get("sha256")
        ckpt = d.get("checkpoint")
        precision = d.get("precision", "fp32")  # stores made before it was recorded: fp32
        if precision not in ("fp32", "bf16", "fp16"):
            raise SchemaError(f"store attributes: 'teacher.precision' has bad value {precision!r}")
        return cls(
            arch=_require(d, "arch", str, w),
            sha256=str(sha) if sha is not None else None,
            init=_require(d, "init", str, w),
            checkpoint=str(ckpt) if ckpt is not None else None,
            precision=str(precision),
            preprocess=_preprocess_record(d.get("preprocess")),
            path=_optional_str(d, "path", w),
        )


def _optional_str(d: dict[str, Any], key: str, where: str) -> str | None:
    value = d.get(key)
    if value is not None and not isinstance(value, str):
        raise SchemaError(f"store attributes: '{where}{key}' has bad value {value!r}")
    return value


def _preprocess_record(record: object) -> dict[str, Any] | None:
    """``teacher.preprocess``: None, or mean and std of equal length (positive std)."""
    if record is None:
        return None
    bad = SchemaError(f"store attributes: 'teacher.preprocess' has bad value {record!r}")
    if not isinstance(record, dict):
        raise bad
    mean, std = record.get("mean"), record.get("std")
    if not (isinstance(mean, list) and isinstance(std, list) and mean and len(mean) == len(std)):
        raise bad
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in mean + std)
    if not numbers or min(std) <= 0:
        raise bad
    return dict(record)


def _sparse_record(d: dict[str, Any], schema: int) -> dict[str, Any] | None:
    record = d.get("sparse")
    if record is None:
        return None
    if schema < SPARSE_SCHEMA or not isinstance(record, dict):
        raise SchemaError(f"store attributes: 'sparse' has bad value {record!r} (schema {schema})")
    try:
        spec = spec_of_record(record)
    except ConfigError as exc:
        raise SchemaError(f"store attributes: {exc}") from None
    if (spec.num_classes, spec.dtype) != (d.get("num_classes"), d.get("dtype")):
        raise SchemaError("store attributes: the 'sparse' record disagrees with num_classes/dtype")
    out: dict[str, Any] = spec.to_dict()
    return out


def _derivation(d: dict[str, Any], schema: int) -> tuple[dict[str, Any], ...]:
    steps = d.get("derivation", [])
    if not isinstance(steps, list) or not all(isinstance(x, dict) for x in steps):
        raise SchemaError(f"store attributes: 'derivation' has bad value {steps!r}")
    if steps and schema < SPARSE_SCHEMA:
        raise SchemaError(f"store attributes: 'derivation' needs schema 2, not {schema}")
    return tuple(dict(x) for x in steps)


@dataclass(frozen=True)
class StoreMeta:
    """Root attributes of a store (under the ``sortkd_cache`` key)."""

    num_samples: int
    num_views: int
    num_classes: int
    chunk_samples: int
    dtype: str
    seed: int
    dataset: DatasetRecord
    teacher: TeacherRecord
    augment: dict[str, Any]
    tool_version: str
    created: str
    schema: int = CHECKSUM_SCHEMA
    complete: bool = False
    teacher_accuracy: tuple[float, ...] = field(default_factory=tuple)
    dump_seconds: float | None = None
    #: A random id fixed when the dump creates the store (None for stores made before it
    #: existed); copies keep it, so a run can name its cache after the store moved.
    store_id: str | None = None
    #: The sparse layout (``SparseSpec.to_dict()``) of every logits kind, or None (dense).
    sparse: dict[str, Any] | None = None
    #: How this store was derived from others by ``copy`` (one record per step; schema 2).
    derivation: tuple[dict[str, Any], ...] = ()

    @property
    def layout(self) -> str:
        """The name of the store's logits layout (``LAYOUTS``): ``dense`` without a sparse
        record, else the record's ``layout`` (``topk`` for records that predate the key)."""
        if self.sparse is None:
            return "dense"
        return str(self.sparse.get("layout", "topk"))

    def to_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.sparse is not None:
            extra["sparse"] = dict(self.sparse)
        if self.derivation:
            extra["derivation"] = [dict(d) for d in self.derivation]
        return extra | {
            "schema": self.schema,
            "num_samples": self.num_samples,
            "num_views": self.num_views,
            "num_classes": self.num_classes,
            "chunk_samples": self.chunk_samples,
            "dtype": self.dtype,
            "seed": self.seed,
            "dataset": self.dataset.to_dict(),
            "teacher": self.teacher.to_dict(),
            "augment": dict(self.augment),
            "tool_version": self.tool_version,
            "created": self.created,
            "complete": self.complete,
            "teacher_accuracy": list(self.teacher_accuracy),
            "dump_seconds": self.dump_seconds,
            "store_id": self.store_id,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StoreMeta:
        schema = _require(d, "schema", int, "")
        if schema > SCHEMA_VERSION:
            raise SchemaError(
                f"store schema {schema} is newer than this sortkd-cache reads "
                f"(schema <= {SCHEMA_VERSION}); upgrade sortkd-cache"
            )
        if schema < 1:
            raise SchemaError(f"store attributes: bad schema {schema!r}")
        secs = d.get("dump_seconds")
        store_id = d.get("store_id")
        if store_id is not None and not isinstance(store_id, str):
            raise SchemaError(f"store attributes: 'store_id' has bad value {store_id!r}")
        return cls(
            schema=schema,
            num_samples=_require(d, "num_samples", int, ""),
            num_views=_require(d, "num_views", int, ""),
            num_classes=_require(d, "num_classes", int, ""),
            chunk_samples=_require(d, "chunk_samples", int, ""),
            dtype=_require(d, "dtype", str, ""),
            seed=_require(d, "seed", int, ""),
            dataset=DatasetRecord.from_dict(_require(d, "dataset", dict, "")),
            teacher=TeacherRecord.from_dict(_require(d, "teacher", dict, "")),
            augment=dict(_require(d, "augment", dict, "")),
            tool_version=_require(d, "tool_version", str, ""),
            created=_require(d, "created", str, ""),
            complete=bool(d.get("complete", False)),
            teacher_accuracy=tuple(float(x) for x in d.get("teacher_accuracy", [])),
            dump_seconds=float(secs) if secs is not None else None,
            store_id=store_id,
            sparse=_sparse_record(d, schema),
            derivation=_derivation(d, schema),
        )

    def replace(self, **changes: Any) -> StoreMeta:
        return dataclasses.replace(self, **changes)

    def with_sparse(self, spec: SparseSpec | SampledSpec | QuantSpec) -> StoreMeta:
        """This metadata for a sparse (top-K, sampled or quantized) store of ``spec`` (schema 2)."""
        return self.replace(schema=SCHEMA_VERSION, sparse=spec.to_dict())
