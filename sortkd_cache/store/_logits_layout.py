"""How a store holds its logits kinds, as one registered object: a :class:`LogitsLayout`.

A store's logits are dense (one ``[N, V, C]`` array per kind: :class:`~._dense_layout.DenseLayout`)
or sparse (per kind a group of arrays: top-K ``ids``, ``values`` and ``stats``,
:class:`~._topk_layout.SparseLayout`). Everything that differs between layouts is a method
here, so that the stages and the training path ask ``store.layout`` instead of branching on
the layout themselves:

* how a row is read (:meth:`~LogitsLayout.reader`, :meth:`~LogitsLayout.pack`) and written
  (:meth:`~LogitsLayout.create_kind`, :meth:`~LogitsLayout.write_rows`,
  :meth:`~LogitsLayout.encode`), and checked (:meth:`~LogitsLayout.kind_arrays`,
  :meth:`~LogitsLayout.row_problems`, :meth:`~LogitsLayout.required_arrays`);
* what training reads (:attr:`~LogitsLayout.training`: the ``module:name`` of its training
  part, :class:`sortkd_cache.data.LayoutTraining`, with its whole-view and streamed sources
  and its teacher-rows factory; the data layer imports it when it first asks, as a sort
  method names its torch kernel), and what ``--topk K`` means for it
  (:meth:`~LogitsLayout.stored_topk`, :attr:`~LogitsLayout.topk_per_batch`);
* how a kind is sorted (:meth:`~LogitsLayout.sort_rows`, and the resume record of the sort
  stage: :meth:`~LogitsLayout.sorted_chunks`, :meth:`~LogitsLayout.write_sorted`,
  :meth:`~LogitsLayout.record_sorted`).

Each layout registers in :data:`LAYOUTS` under the name its store's record gives
(:attr:`StoreMeta.layout <sortkd_cache.store.StoreMeta.layout>`); :func:`layout_of` is the one
place a layout is chosen, by that name. Adding a layout is one module that registers it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from sortkd_cache._registry import Registry
from sortkd_cache.errors import LogitsKindError
from sortkd_cache.sparse import QuantRows, SampledRows, SparseRows, SparseSpec
from sortkd_cache.store._problem import Problem

if TYPE_CHECKING:
    from sortkd_cache.store._meta import StoreMeta

__all__ = ["LAYOUTS", "KindReader", "LayoutStore", "LogitsLayout", "Packed", "Rows", "layout_of"]

#: one chunk of a kind: dense [S, C], top-K, sampled or quantized rows
Rows = np.ndarray | SparseRows | SampledRows | QuantRows
#: what a layout's chunks are made of, as numpy arrays with the rows first (for readers that
#: gather rows across chunks): (logits,) or (ids, values, stats)
Packed = tuple[np.ndarray, ...]


class KindReader(Protocol):
    """A kind's rows as its layout reads them (:meth:`LogitsLayout.reader`)."""

    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def chunks(self) -> tuple[int, ...]: ...
    def __len__(self) -> int: ...
    def __getitem__(self, selection: Any) -> Any: ...
    def read_block(self, block: int, view: int) -> Any: ...


class LayoutStore(Protocol):
    """What a layout uses of a :class:`~sortkd_cache.store.CacheStore`."""

    @property
    def url(self) -> str: ...
    @property
    def meta(self) -> StoreMeta: ...
    @property
    def num_views(self) -> int: ...
    @property
    def num_blocks(self) -> int: ...
    @property
    def labels(self) -> np.ndarray: ...
    def block_bounds(self, block: int) -> tuple[int, int]: ...
    def raw_array(self, path: str) -> Any: ...
    def has_array(self, path: str) -> bool: ...
    def progress(self, kind: str) -> np.ndarray: ...
    def create_group(self, path: str, attributes: Mapping[str, Any]) -> Any: ...
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
    ) -> Any: ...
    def write_chunk(
        self, kind: str, block: int, view: int, values: Rows, *, count: int = 0
    ) -> None: ...


class LogitsLayout:
    """The questions whose answer differs between a dense and a sparse store."""

    name: ClassVar[str] = ""
    #: ``module:name`` of the layout's training part (sources, teacher rows), imported by the
    #: data layer when it first asks (:func:`sortkd_cache.data.training_of`)
    training: ClassVar[str] = ""
    #: whether ``train --topk K`` truncates this layout's rows batch by batch (dense rows)
    topk_per_batch: ClassVar[bool] = False
    #: how a loss may treat the classes a row does not name (``train --sparse-tail``), the
    #: first the default; none for rows that name every class
    tails: ClassVar[tuple[str, ...]] = ()
    #: how messages name a store of this layout ("already sparse", "already quantized")
    word: ClassVar[str] = "dense"
    #: the format record of the layout (``StoreMeta.sparse``); None where it has none
    spec: Any = None

    @classmethod
    def from_meta(cls, meta: StoreMeta) -> LogitsLayout:
        """The layout of a store with this record."""
        raise NotImplementedError

    def describe(self) -> str:
        """How the layout was asked for, as dump and copy spell it (``dense``, ``--topk 10``)."""
        raise NotImplementedError

    def info_record(self) -> dict[str, Any] | None:
        """What ``info`` shows of the layout's format (its record and bytes per sample-view);
        None for a layout without a record."""
        raise NotImplementedError

    def required_arrays(self, kind: str) -> list[str]:
        """The arrays a finished ``kind`` has (a resumed dump checks them)."""
        raise NotImplementedError

    def stored_topk(self, topk: int | None, url: str) -> SparseSpec | None:
        """The top-K format the store holds for ``train --topk K`` (None: it holds no top K,
        rows are dense); refuses a K it cannot serve."""
        raise NotImplementedError

    def reader(self, store: LayoutStore, kind: str) -> KindReader:
        """The kind's rows: ``reader[i, v]`` and ``read_block(block, view)`` give chunks."""
        raise NotImplementedError

    def kind_arrays(self, store: LayoutStore, kind: str) -> list[str]:
        """The arrays that hold the kind's logits."""
        raise NotImplementedError

    def create_kind(
        self, store: LayoutStore, kind: str, dtype: str, attrs: dict[str, Any], fidelity: bool
    ) -> dict[str, Any]:
        """Create (replacing) the kind's arrays; returns ``{path: array}``."""
        raise NotImplementedError

    def kind_paths(self, kind: str) -> list[str]:
        """Every node path the kind's arrays live at (for handle caches)."""
        raise NotImplementedError

    def write_rows(
        self, store: LayoutStore, kind: str, block: int, view: int, rows: Rows, fidelity: Any
    ) -> None:
        """Write one (block, view) chunk of the kind (no progress marker)."""
        raise NotImplementedError

    def encode(
        self, dense: np.ndarray, labels: np.ndarray, *, at: tuple[int, int] = (0, 0)
    ) -> tuple[Rows, np.ndarray | None]:
        """A dense chunk ``[S, C]`` as this layout's rows, with its fidelity sums (sparse);
        ``at``: (the chunk's first sample index, its view), what sampled rows are keyed by."""
        raise NotImplementedError

    def finish_attrs(self, store: LayoutStore, kind: str) -> dict[str, Any]:
        """What a finished kind made from dense rows records (sparse: its fidelity)."""
        raise NotImplementedError

    def fidelity_sums(self, store: LayoutStore, kind: str) -> Any | None:
        """The per-(block, view) fidelity sums [B, V, T+2] of a kind made from dense rows
        (what a re-sliced copy carries along), or None where the kind has none."""
        raise NotImplementedError

    def row_problems(self, store: LayoutStore, kinds: Sequence[str]) -> list[Problem]:
        """Rows checked across arrays (sparse: the label's logit, the rank order)."""
        raise NotImplementedError

    def row_bytes(self, meta: StoreMeta) -> int:
        """Bytes of one sample-view's logits, before compression."""
        raise NotImplementedError

    def check_loss(self, loss: str) -> None:
        """Refuse (ConfigError, one line) a loss this layout's rows cannot serve."""
        return None

    def check_copy(self, url: str, derive: str | None, dtype: str) -> None:
        """Refuse what ``copy`` cannot do to this layout: ``derive``, the option that changes
        the rows' form (``--topk``, ``--sample``, ``--quantize``; None: none given), and
        ``--dtype``."""
        raise NotImplementedError

    def cast(self, rows: Rows, dtype: str) -> Rows:
        """A chunk in ``dtype`` (``copy --dtype``; sparse stores keep theirs)."""
        raise NotImplementedError

    def sort_rows(
        self, method: str, rows: Rows, labels: np.ndarray
    ) -> tuple[Rows, np.ndarray, np.ndarray]:
        """``(rows after method, the label's rank, the top class)`` of one chunk."""
        raise NotImplementedError

    def sorted_chunks(self, store: LayoutStore, kind: str) -> np.ndarray:
        """bool [blocks, V]: the chunks of ``kind`` an earlier sort run wrote."""
        raise NotImplementedError

    def write_sorted(
        self, store: LayoutStore, kind: str, block: int, view: int, rows: Rows, changed: int
    ) -> None:
        """Write one sorted chunk, with its progress record where this layout keeps one."""
        raise NotImplementedError

    def record_sorted(self, store: LayoutStore, kind: str, changed: np.ndarray) -> None:
        """Record a finished sort's per-chunk counts ``[blocks * V]``, where not yet done."""
        raise NotImplementedError

    def kept(self, rows: Rows) -> tuple[np.ndarray, np.ndarray | None]:
        """A chunk's stored logit values and their class ids (int64; None: every class)."""
        raise NotImplementedError

    def read_error(self, rows: Rows) -> np.ndarray:
        """Per row [S], the most a stored value may differ from the logit it stands for by
        the layout's own rounding (``verify --recompute`` allows it): 0 for layouts that
        keep values in the store's dtype (dense, top-K, sampled)."""
        return np.zeros(len(self.pack(rows)[0]))

    def pack(self, rows: Rows) -> Packed:
        """A chunk as arrays with the rows first (see :data:`Packed`)."""
        raise NotImplementedError


#: The logits layouts, by the name a store's record gives (``StoreMeta.layout``).
LAYOUTS: Registry[type[LogitsLayout]] = Registry("logits layout", error=LogitsKindError)


def layout_of(meta: StoreMeta) -> LogitsLayout:
    """The layout a store's record declares (the one place it is chosen: by its name)."""
    return LAYOUTS.get(meta.layout).from_meta(meta)
