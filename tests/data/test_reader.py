"""The windowed chunk reader: exact rows, each chunk read once, memory bounded by the window."""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest

from sortkd_cache.data import ChunkWindowReader, StreamLayout, streamed_order
from sortkd_cache.errors import ConfigError

C = 100


def _chunks(n: int, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """Dense float16 rows [n, C] and an empty list that records the chunks read."""
    return np.random.default_rng(seed).standard_normal((n, C)).astype(np.float16), []


def _reader_for(data: np.ndarray, order: np.ndarray, chunk: int, reads: list[int], **kw):
    def read(block: int) -> np.ndarray:
        reads.append(block)
        return data[block * chunk : (block + 1) * chunk].copy()

    return ChunkWindowReader(read, order, chunk, **kw)


def test_rows_are_exact_and_each_chunk_is_read_once() -> None:
    n, chunk, batch = 1_003, 40, 16
    data, reads = _chunks(n)
    order = streamed_order(StreamLayout(n, chunk, lanes=4, window=2), batch, seed=5, epoch=1)
    with _reader_for(data, order, chunk, reads, prefetch=3) as reader:
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            assert np.array_equal(reader.take(idx), data[idx])
        assert reader.remaining == 0 and reader.resident_bytes == 0
    assert sorted(reads) == list(range(-(-n // chunk)))


def test_a_rank_reads_only_the_chunks_of_its_order() -> None:
    n, chunk = 400, 25
    data, reads = _chunks(n)
    order = np.concatenate([np.arange(100, 150), np.arange(300, 325)])[::-1].copy()
    with _reader_for(data, order, chunk, reads) as reader:
        assert np.array_equal(reader.take(order[:30]), data[order[:30]])
        assert np.array_equal(reader.take(order[30:]), data[order[30:]])
    assert sorted(reads) == [4, 5, 12]


def test_tuple_payloads_are_gathered_field_by_field() -> None:
    n, chunk = 90, 20
    ids = np.arange(n * 3, dtype=np.int16).reshape(n, 3)
    vals = ids.astype(np.float32) / 7

    def read(block: int) -> tuple[np.ndarray, np.ndarray]:
        sl = slice(block * chunk, (block + 1) * chunk)
        return ids[sl], vals[sl]

    order = np.random.default_rng(1).permutation(n)
    with ChunkWindowReader(read, order, chunk) as reader:
        got_ids, got_vals = reader.take(order[:50])
        assert np.array_equal(got_ids, ids[order[:50]]) and got_ids.dtype == np.int16
        assert np.array_equal(got_vals, vals[order[:50]])


def test_out_of_order_requests_and_read_errors_are_reported() -> None:
    data, reads = _chunks(100)
    order = np.arange(100)
    reader = _reader_for(data, order, 10, reads)
    with reader, pytest.raises(ConfigError, match="out of the epoch's order"):
        reader.take(np.array([5, 6]))

    def broken(block: int) -> np.ndarray:
        raise OSError(f"chunk {block} unreadable")

    with ChunkWindowReader(broken, order, 10) as reader, pytest.raises(OSError, match="chunk 0"):
        reader.take(order[:4])


def _epoch_peak(n: int) -> tuple[int, int]:
    """(reader-counted, tracemalloc) peak bytes of one streamed epoch over n samples."""
    chunk, batch = 64, 64
    data = np.ones((n, C), dtype=np.float16)
    order = streamed_order(StreamLayout(n, chunk, lanes=4, window=2), batch, seed=0, epoch=0)
    lock = threading.Lock()

    def read(block: int) -> np.ndarray:
        with lock:
            return data[block * chunk : (block + 1) * chunk].copy()

    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    with ChunkWindowReader(read, order, chunk, prefetch=4) as reader:
        for start in range(0, n, batch):
            reader.take(order[start : start + batch])
        counted = reader.peak_bytes
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return counted, peak


def test_peak_soft_label_memory_does_not_grow_with_n() -> None:
    chunk_bytes = 64 * C * 2
    small, large = _epoch_peak(8_000), _epoch_peak(32_000)  # stores 4x apart
    bound = (2 * 4 * 2 + 4 + 4) * chunk_bytes  # two windows per lane, the tail, the prefetch
    assert small[0] <= bound and large[0] <= bound, (small, large, bound)
    # tracemalloc sees every numpy allocation: chunks, gathers, the order itself (8 B/sample)
    whole_view = 32_000 * C * 2
    assert large[1] <= bound + 32_000 * 8 * 4 + chunk_bytes * 4, (large, bound)
    assert large[1] < whole_view / 4
