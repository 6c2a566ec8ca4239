"""Array names, chunk shapes and codecs of the store (the table of every array, with its
dtype and fill value, is :mod:`._schema`).

Layout::

    /                      group; attributes["sortkd_cache"] = StoreMeta (provenance)
    /labels                int64 [N]            chunks (S,)
    /aug_params            int32 [N, V, 5]      chunks (S, 1, 5)  (top, left, height, width, flip)
    /logits/raw            f16|f32 [N, V, C]    chunks (S, 1, C)  written once by dump
    /logits/sort, /swap    same shape/dtype     written by sort, never over raw (one kind per
                                                method of sortkd_cache.sorting.METHODS)
    /logits/<kind>_topk/{ids,values,rest}       legacy side copy of the retired `sort --topk`:
                                                never written now, still read and verified
    /progress/<kind>       int64 [B, V]         chunks (1, 1): -1 = block not written yet,
                                                otherwise a per-block count (correct rows for
                                                raw, changed rows for sort/swap)

A chunk holds a block of S consecutive samples of one view, so it never splits a row and one
epoch of training (one view) reads whole chunks. Every chunk is zstd-compressed and followed by
a crc32c checksum. Float logits use NaN as fill value, so a missing chunk reads as NaN and is
reported instead of being silently taken as zeros.
"""

from __future__ import annotations

from zarr.abc.codec import BytesBytesCodec
from zarr.codecs import Crc32cCodec, ZstdCodec

from sortkd_cache.sorting import LOGIT_KINDS

__all__ = [
    "LABELS",
    "LOGIT_KINDS",
    "NUM_PARAMS",
    "PARAMS",
    "block_bounds",
    "choose_chunk_samples",
    "codecs",
    "logits_path",
    "num_blocks",
    "progress_path",
]

LABELS = "labels"
PARAMS = "aug_params"
NUM_PARAMS = 5
TARGET_CHUNK_BYTES = 1 << 21


def logits_path(kind: str) -> str:
    return f"logits/{kind}"


def progress_path(kind: str) -> str:
    return f"progress/{kind}"


def codecs(level: int = 1) -> list[BytesBytesCodec]:
    """Bytes-to-bytes codecs of every array: zstd, then a crc32c checksum."""
    return [ZstdCodec(level=level), Crc32cCodec()]


def choose_chunk_samples(num_samples: int, num_classes: int, itemsize: int) -> int:
    """Samples per chunk: about 2 MiB of logits, a multiple of 64, at most ``num_samples``."""
    rows = max(64, TARGET_CHUNK_BYTES // max(1, num_classes * itemsize))
    rows = min(rows, 1 << 16)
    rows -= rows % 64
    return max(1, min(rows, num_samples))


def num_blocks(num_samples: int, chunk_samples: int) -> int:
    return -(-num_samples // chunk_samples)


def block_bounds(block: int, num_samples: int, chunk_samples: int) -> tuple[int, int]:
    start = block * chunk_samples
    return start, min(num_samples, start + chunk_samples)
