"""What the sparse layouts (top-K and sampled) share: per kind a group of arrays written chunk
by chunk, a spec that fixes the row's bytes and dtype, and no re-sparsification or re-cast.

:class:`GroupLayout` answers those questions once for :class:`~._topk_layout.SparseLayout` and
:class:`~._sampled_layout.SampledLayout`; each names its row arrays (:attr:`GroupLayout.arrays`)
and the word ``copy`` uses for it (``sparse``, ``sampled``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from sortkd_cache.errors import ConfigError, LogitsKindError
from sortkd_cache.store._layout import logits_path
from sortkd_cache.store._logits_layout import LayoutStore, LogitsLayout, Rows
from sortkd_cache.store._sparse import sparse_path

if TYPE_CHECKING:
    from sortkd_cache.store._meta import StoreMeta

__all__ = ["GroupLayout"]


class _RowSpec(Protocol):
    @property
    def bytes_per_row(self) -> int: ...
    @property
    def dtype(self) -> str: ...


class GroupLayout(LogitsLayout):
    """A layout that keeps each kind as a group of row arrays plus a ``fidelity`` array."""

    #: the row arrays of a kind, in :meth:`pack` order (``fidelity`` comes after them)
    arrays: ClassVar[tuple[str, ...]] = ()
    #: how ``copy`` names a store of this layout ("already sparse", "already sampled")
    spec: _RowSpec

    def kind_arrays(self, store: LayoutStore, kind: str) -> list[str]:
        fidelity = sparse_path(kind, "fidelity")
        found = [sparse_path(kind, n) for n in self.arrays]
        return found + ([fidelity] if store.has_array(fidelity) else [])

    def kind_paths(self, kind: str) -> list[str]:
        return [logits_path(kind), *(sparse_path(kind, n) for n in (*self.arrays, "fidelity"))]

    def required_arrays(self, kind: str) -> list[str]:
        return self.kind_paths(kind)

    def fidelity_sums(self, store: LayoutStore, kind: str) -> Any | None:
        path = sparse_path(kind, "fidelity")
        return store.raw_array(path) if store.has_array(path) else None

    def row_bytes(self, meta: StoreMeta) -> int:
        return int(self.spec.bytes_per_row)

    def check_copy(self, url: str, derive: str | None, dtype: str) -> None:
        if derive is not None:
            flag = derive
            raise LogitsKindError(
                f"{flag} needs dense logits, but '{url}' is already {self.word} "
                f"({self.describe()}); copy it without {flag}"
            )
        if dtype != self.spec.dtype:
            raise ConfigError(f"--dtype narrows dense stores only; this store is {self.word}")

    def cast(self, rows: Rows, dtype: str) -> Rows:
        return rows  # check_copy refused another dtype

    def sorted_chunks(self, store: LayoutStore, kind: str) -> np.ndarray:
        """Several arrays per chunk: a progress marker per chunk, written after them."""
        done: np.ndarray = store.progress(kind) >= 0
        return done

    def write_sorted(
        self, store: LayoutStore, kind: str, block: int, view: int, rows: Rows, changed: int
    ) -> None:
        store.write_chunk(kind, block, view, rows, count=changed)

    def record_sorted(self, store: LayoutStore, kind: str, changed: np.ndarray) -> None:
        return None  # written chunk by chunk, with the chunks
