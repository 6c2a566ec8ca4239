"""The cache store: open, create, read and (for the stages) write."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from sortkd_cache.errors import (
    CorruptChunkError,
    LogitsKindError,
    SchemaError,
    SortKDError,
    StoreReadOnlyError,
)
from sortkd_cache.sparse import SparseSpec
from sortkd_cache.store._backend import (
    ROOT_META,
    Location,
    Mode,
)
from sortkd_cache.store._integrity import (
    DIGEST_KEY,
    check_node,
    create_checked_array,
    create_checked_group,
    with_digest,
)
from sortkd_cache.store._layout import (
    LABELS,
    LOGIT_KINDS,
    NUM_PARAMS,
    PARAMS,
    block_bounds,
    codecs,
    logits_path,
    num_blocks,
    progress_path,
)
from sortkd_cache.store._logits import LogitsArray, zarr_get
from sortkd_cache.store._logits_layout import KindReader, LogitsLayout, Rows, layout_of
from sortkd_cache.store._meta import ATTRS_KEY, CHECKSUM_SCHEMA, StoreMeta
from sortkd_cache.store._sparse import SparseLogitsArray

if TYPE_CHECKING:
    from zarr import Group


__all__ = ["KIND_GROUPS", "CacheStore", "LogitsArray"]

KIND_GROUPS = frozenset(logits_path(k) for k in LOGIT_KINDS)  # sparse kinds: one group each


class CacheStore:
    """A sortkd-cache store. Use :func:`open_store` or :func:`create_store`."""

    def __init__(self, location: Location, mode: Mode, group: Group) -> None:
        self.location = location
        self.mode = mode
        self._group = group
        self._meta: StoreMeta | None = None
        self._layout: tuple[StoreMeta, LogitsLayout] | None = None
        self._arrays: dict[str, Any] = {}  # opened array handles (metadata read once)

    # -- identity ---------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"CacheStore({self.location.raw!r}, mode={self.mode!r})"

    @property
    def url(self) -> str:
        return self.location.raw

    @property
    def meta(self) -> StoreMeta:
        if self._meta is None:
            attrs = dict(self._group.attrs)
            record = attrs.get(ATTRS_KEY)
            if not isinstance(record, dict):
                raise SchemaError(f"'{self.url}' is a zarr group but not a sortkd-cache store")
            meta = StoreMeta.from_dict(record)  # a newer schema is refused here, first
            check_node(self._group, ROOT_META, meta.schema >= CHECKSUM_SCHEMA, self.url)
            self._meta = meta
        return self._meta

    @property
    def num_samples(self) -> int:
        return self.meta.num_samples

    @property
    def num_views(self) -> int:
        return self.meta.num_views

    @property
    def num_classes(self) -> int:
        return self.meta.num_classes

    @property
    def chunk_samples(self) -> int:
        return self.meta.chunk_samples

    @property
    def layout(self) -> LogitsLayout:
        """How the logits kinds are held: dense or sparse top K (:mod:`._logits_layout`)."""
        meta = self.meta
        if self._layout is None or self._layout[0] is not meta:
            self._layout = (meta, layout_of(meta))
        return self._layout[1]

    @property
    def is_sparse(self) -> bool:
        """Whether the logits kinds are stored sparse (top K; see :mod:`sortkd_cache.sparse`)."""
        return self.layout.spec is not None

    @cached_property
    def sparse_spec(self) -> SparseSpec | None:
        """The :class:`~sortkd_cache.sparse.SparseSpec` of a sparse store (None when dense)."""
        if self.meta.sparse is None:
            return None
        return SparseSpec.from_dict(self.meta.sparse)

    @property
    def num_blocks(self) -> int:
        return num_blocks(self.num_samples, self.chunk_samples)

    def block_bounds(self, block: int) -> tuple[int, int]:
        return block_bounds(block, self.num_samples, self.chunk_samples)

    # -- arrays -----------------------------------------------------------------------------
    def _fresh(self, path: str) -> Any | None:
        """Open ``path`` anew (current attributes), refreshing the handle cache.

        Metadata that zarr cannot parse (broken JSON, unknown codec or dtype) or that does
        not match its checksum raises :class:`SchemaError` naming the file."""
        self._arrays.pop(path, None)
        try:
            arr = self._group[path]
        except KeyError:
            return None
        except SortKDError:
            raise
        except Exception as exc:
            msg = (str(exc).splitlines() or [""])[0][:200]
            raise SchemaError(
                f"store '{self.url}': {path}/zarr.json is not valid array metadata "
                f"({type(exc).__name__}: {msg})"
            ) from None
        # inner groups carry nothing to protect; a sparse kind's group holds its attributes
        if isinstance(arr, zarr.Array) or path in KIND_GROUPS:
            check_node(
                self._group, f"{path}/zarr.json", self.meta.schema >= CHECKSUM_SCHEMA, self.url
            )
        self._arrays[path] = arr
        return arr

    def _array(self, path: str) -> Any:
        arr = self._arrays.get(path)  # never `or`: a zarr node's truth value lists members
        if arr is None:
            arr = self._fresh(path)
        if arr is None:
            raise SchemaError(f"store '{self.url}' is missing array '{path}'")
        return arr

    def has_array(self, path: str) -> bool:
        return path in self._arrays or self._fresh(path) is not None

    @cached_property
    def labels(self) -> np.ndarray:
        """Ground-truth labels, int64 [N]."""
        out = zarr_get(self._array(LABELS), ..., f"{self.url} labels").astype(np.int64)
        if out.shape != (self.num_samples,):
            raise SchemaError(f"store '{self.url}': labels has shape {out.shape}")
        bad = np.flatnonzero((out < 0) | (out >= self.num_classes))
        if bad.size:
            i = int(bad[0])
            raise SchemaError(
                f"store '{self.url}': label {int(out[i])} of sample {i} is outside "
                f"[0, {self.num_classes})"
            )
        return out

    def params(self, view: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Recorded augmentation parameters of one view, int32 [stop-start, 5]."""
        stop = self.num_samples if stop is None else stop
        out = zarr_get(self._array(PARAMS), (slice(start, stop), view), f"{self.url} aug_params")
        if (out < 0).any():
            raise CorruptChunkError(f"{self.url} aug_params[{start}:{stop}, {view}]: missing chunk")
        return out

    def kinds(self) -> list[str]:
        """Logits kinds present and complete, e.g. ['raw', 'sort']."""
        return [k for k in LOGIT_KINDS if self.kind_complete(k)]

    def kind_attrs(self, kind: str) -> dict[str, Any]:
        arr = self._fresh(logits_path(kind))
        return {} if arr is None else dict(arr.attrs)

    def kind_complete(self, kind: str) -> bool:
        cached = self._arrays.get(logits_path(kind))
        if cached is not None and cached.attrs.get("complete", False):
            return True  # completion only goes back with --overwrite, under the writer lock
        return bool(self.kind_attrs(kind).get("complete", False))

    def kind_array(self, kind: str = "raw") -> KindReader:
        """The logits of ``kind`` in the store's layout: ``read_block(block, view)`` gives a
        chunk (dense ``[S, C]``, SparseRows or SampledRows); refuses a missing or incomplete
        kind."""
        self._check_kind(kind)
        return self.layout.reader(self, kind)

    def logits(self, kind: str = "raw") -> LogitsArray:
        """The [N, V, C] logits of ``kind`` ('raw', 'sort' or 'swap') of a dense store."""
        arr = self.kind_array(kind)
        if not isinstance(arr, LogitsArray):
            raise LogitsKindError(
                f"store '{self.url}' holds sparse logits ({self.layout.describe()}), not dense "
                f"[N, V, C] ones; read them with store.kind_array('{kind}')"
            )
        return arr

    def sparse_logits(self, kind: str = "raw") -> SparseLogitsArray:
        """The sparse logits of ``kind`` of a sparse store: ``[i, v]`` gives SparseRows."""
        arr = self.kind_array(kind)
        if not isinstance(arr, SparseLogitsArray):
            raise LogitsKindError(
                f"store '{self.url}' holds {self.layout.describe()} logits, not top-K ones; "
                f"read them with store.kind_array('{kind}')"
            )
        return arr

    def _check_kind(self, kind: str) -> None:
        if kind not in LOGIT_KINDS:
            raise LogitsKindError(f"unknown logits kind '{kind}'; known: {', '.join(LOGIT_KINDS)}")
        if not self.kind_complete(kind):
            present = ", ".join(self.kinds()) or "none"
            hint = f"; run `sortkd-cache sort {self.url} --method {kind}`" if kind != "raw" else ""
            raise LogitsKindError(
                f"store '{self.url}' has no complete '{kind}' logits (present: {present}){hint}"
            )

    def progress(self, kind: str) -> np.ndarray:
        """int64 [blocks, V]: -1 where a (block, view) chunk is not written yet."""
        if not self.has_array(progress_path(kind)):
            return np.full((self.num_blocks, self.num_views), -1, dtype=np.int64)
        arr = self._array(progress_path(kind))
        want = (self.num_blocks, self.num_views)
        if tuple(int(x) for x in arr.shape) != want:  # never read a declared hostile shape
            raise SchemaError(
                f"store '{self.url}': progress/{kind} has shape {tuple(arr.shape)}, the layout "
                f"says {want}"
            )
        return zarr_get(arr, ..., f"{self.url} progress/{kind}")

    def raw_array(self, path: str) -> Any:
        """The underlying zarr array at ``path`` (for stages and verification)."""
        return self._array(path)

    # -- writing (stages) -------------------------------------------------------------------
    def _require_writable(self) -> None:
        if self.mode == "r":
            raise StoreReadOnlyError(f"store '{self.url}' is open read-only")

    def write_meta(self, meta: StoreMeta) -> None:
        """Write the provenance record with the root's metadata checksum (one write)."""
        self._require_writable()
        attrs = {k: v for k, v in dict(self._group.attrs).items() if k != DIGEST_KEY}
        attrs[ATTRS_KEY] = meta.to_dict()
        self._group.attrs.update(with_digest(self._group.metadata, attrs))
        self._meta = meta

    def _create(self, path: str, attributes: Mapping[str, Any] | None, **kw: Any) -> Any:
        return create_checked_array(self._group, path, attributes, **kw)

    def create_kind(
        self,
        kind: str,
        dtype: str,
        *,
        overwrite: bool = False,
        attrs: Mapping[str, Any] | None = None,
        fidelity: bool = False,
    ) -> None:
        """Create (or, with ``overwrite``, recreate) the logits array and progress of ``kind``.

        ``attrs`` are written with the array's metadata in one write (no window in which a
        killed writer leaves the array without them). A sparse store gets the kind's group of
        sparse arrays instead (with a ``fidelity`` array when the kind is made from dense rows).
        """
        self._require_writable()
        exists = self.has_array(logits_path(kind))
        if exists and not overwrite:
            return
        all_attrs = {**dict(attrs or {}), "kind": kind, "complete": False}
        for path in self.layout.kind_paths(kind):
            self._arrays.pop(path, None)
        self._arrays.update(self.layout.create_kind(self, kind, dtype, all_attrs, fidelity))
        self._create_progress(kind)

    def _create_progress(self, kind: str) -> None:
        self._arrays[progress_path(kind)] = self._create(
            progress_path(kind),
            None,
            shape=(self.num_blocks, self.num_views),
            chunks=(1, 1),
            dtype="int64",
            compressors=codecs(),
            fill_value=-1,
        )

    def create_base_arrays(self, labels: np.ndarray) -> None:
        """Labels and the (empty) augmentation-parameter array of a new store."""
        self._require_writable()
        n, v, s = self.num_samples, self.num_views, self.chunk_samples
        lab = self._create(
            LABELS,
            None,
            shape=(n,),
            chunks=(s,),
            dtype="int64",
            compressors=codecs(),
            fill_value=-1,
        )
        lab[...] = labels.astype(np.int64)
        self._arrays[LABELS] = lab
        self._arrays[PARAMS] = self._create(
            PARAMS,
            {"names": ["top", "left", "height", "width", "flip"]},
            shape=(n, v, NUM_PARAMS),
            chunks=(s, 1, NUM_PARAMS),
            dtype="int32",
            compressors=codecs(),
            fill_value=-1,
        )
        self.__dict__.pop("labels", None)

    def write_chunk(
        self,
        kind: str,
        block: int,
        view: int,
        values: Rows,
        *,
        params: np.ndarray | None = None,
        count: int = 0,
        fidelity: np.ndarray | None = None,
    ) -> None:
        """Write one (block, view) chunk; the progress marker is written last.

        In a sparse store ``values`` are :class:`~sortkd_cache.sparse.SparseRows` and
        ``fidelity`` the unit's fidelity sums (kinds made from dense rows)."""
        self._require_writable()
        start, stop = self.block_bounds(block)
        if params is not None:
            self._array(PARAMS)[start:stop, view] = params
        self.layout.write_rows(self, kind, block, view, values, fidelity)
        self._array(progress_path(kind))[block, view] = int(count)

    def create_array(
        self,
        path: str,
        shape: tuple[int, ...],
        chunks: tuple[int, ...],
        dtype: str,
        fill_value: Any,
        *,
        overwrite: bool = False,
        attributes: dict[str, Any] | None = None,
    ) -> Any:
        """Create (or open, unless ``overwrite``) an extra checksummed array."""
        self._require_writable()
        if not overwrite and self.has_array(path):
            return self._array(path)
        arr = self._create(
            path,
            attributes,
            shape=shape,
            chunks=chunks,
            dtype=dtype,
            compressors=codecs(),
            fill_value=fill_value,
        )
        self._arrays[path] = arr
        return arr

    def create_group(self, path: str, attributes: Mapping[str, Any]) -> Any:
        """Create (replacing) a group whose metadata carries its checksum from the start."""
        self._require_writable()
        return create_checked_group(self._group, path, attributes)

    def set_kind_attrs(self, kind: str, attrs: Mapping[str, Any]) -> None:
        self._require_writable()
        arr = self._fresh(logits_path(kind))
        if arr is None:
            raise SchemaError(f"store '{self.url}' is missing array '{logits_path(kind)}'")
        merged = {**dict(arr.attrs), **dict(attrs)}
        arr.attrs.update(with_digest(arr.metadata, merged))
