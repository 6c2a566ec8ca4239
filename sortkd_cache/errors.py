"""One exception hierarchy for every user-facing failure.

Every class subclasses :class:`SortKDError` and a built-in exception, so callers can catch
either. Messages name the bad value. The CLI turns any :class:`SortKDError` into exit code 2
and a single line on stderr; anything else is a bug or an environment failure (exit code 1).
"""

from __future__ import annotations

__all__ = [
    "AugmentError",
    "CheckpointError",
    "ConfigError",
    "CorruptChunkError",
    "DatasetError",
    "FingerprintMismatchError",
    "LogitsKindError",
    "ModelError",
    "NonFiniteLogitsError",
    "OutputError",
    "RemoteStoreError",
    "RunDirError",
    "SchemaError",
    "SortKDError",
    "StoreError",
    "StoreExistsError",
    "StoreLockedError",
    "StoreNotFoundError",
    "StoreReadOnlyError",
]


class SortKDError(Exception):
    """Base class: bad input or a refused operation, reported in one line (exit code 2)."""


class DatasetError(SortKDError, ValueError):
    """Unknown dataset SPEC, unreadable data root, or a malformed dataset."""


class ModelError(SortKDError, ValueError):
    """Unknown architecture name or incompatible model arguments."""


class CheckpointError(SortKDError, ValueError):
    """Missing, unreadable, unsafe or mismatched weights file."""


class AugmentError(SortKDError, ValueError):
    """Unknown augmentation recipe or malformed recorded parameters."""


class ConfigError(SortKDError, ValueError):
    """A bad option, recipe file key, type or value."""


class NonFiniteLogitsError(SortKDError, ValueError):
    """The teacher produced NaN or Inf logits (the sample and view are named)."""


class StoreError(SortKDError, ValueError):
    """A store cannot be used as asked."""


class StoreNotFoundError(StoreError):
    """No store at the given path or URL."""


class StoreExistsError(StoreError):
    """A store already exists where a new one would be written (use --overwrite)."""


class StoreReadOnlyError(StoreError):
    """A write was attempted on a read-only store (https://, or opened with mode='r')."""


class SchemaError(StoreError):
    """Newer schema than this tool reads, a missing array, or malformed attributes."""


class LogitsKindError(StoreError):
    """The requested logits kind (raw, sort, swap) is not in the store."""


class FingerprintMismatchError(StoreError):
    """The store was made from different data than the dataset given."""


class CorruptChunkError(StoreError):
    """A chunk failed its checksum, is truncated or is missing."""


class StoreLockedError(StoreError):
    """Another live process holds the store's writer lock."""


class RemoteStoreError(StoreError):
    """Unknown URL scheme, unreachable endpoint or missing credentials."""


class RunDirError(SortKDError, ValueError):
    """A training run directory that cannot be used (e.g. it holds a finished run)."""


class OutputError(SortKDError, ValueError):
    """An output that is, contains or lies inside an input, or an existing destination that
    --overwrite would replace although it is not an output of the same kind."""
