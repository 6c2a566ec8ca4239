"""The Zarr v3 cache store: layout, provenance, backends (the URL schemes of
:data:`SCHEMES`, store objects) and writer locks."""

from __future__ import annotations

from sortkd_cache.locks import read_lock, writer_lock
from sortkd_cache.store._backend import SCHEMES, Location, Scheme, parse_location
from sortkd_cache.store._copy import CopyResult, copy_store
from sortkd_cache.store._dense_layout import DenseLayout
from sortkd_cache.store._fsspec import fsspec_scheme
from sortkd_cache.store._layout import LOGIT_KINDS, choose_chunk_samples
from sortkd_cache.store._logits_layout import LAYOUTS, LogitsLayout, layout_of
from sortkd_cache.store._meta import SCHEMA_VERSION, DatasetRecord, StoreMeta, TeacherRecord
from sortkd_cache.store._open import StoreLike, create_store, open_store
from sortkd_cache.store._output_kind import is_store_output
from sortkd_cache.store._quant_layout import QuantLayout
from sortkd_cache.store._sampled_layout import SampledLayout
from sortkd_cache.store._store import CacheStore, LogitsArray
from sortkd_cache.store._topk_layout import SparseLayout, TopKLayout
from sortkd_cache.store._verify import Problem, VerifyReport, quick_check, verify_store

__all__ = [
    "LAYOUTS",
    "LOGIT_KINDS",
    "SCHEMA_VERSION",
    "SCHEMES",
    "CacheStore",
    "CopyResult",
    "DatasetRecord",
    "DenseLayout",
    "Location",
    "LogitsArray",
    "LogitsLayout",
    "Problem",
    "QuantLayout",
    "Scheme",
    "SampledLayout",
    "SparseLayout",
    "StoreLike",
    "StoreMeta",
    "TeacherRecord",
    "TopKLayout",
    "VerifyReport",
    "choose_chunk_samples",
    "copy_store",
    "create_store",
    "fsspec_scheme",
    "is_store_output",
    "layout_of",
    "open_store",
    "parse_location",
    "quick_check",
    "read_lock",
    "verify_store",
    "writer_lock",
]
