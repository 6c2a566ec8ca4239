"""Counting host reads: every call of the tensor methods that bring a value to the host."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

#: the tensor methods that read a value on the host (each a device sync on a GPU)
READS = ("item", "__float__", "__int__", "__bool__", "tolist", "numpy", "cpu")


@contextmanager
def count_host_reads() -> Iterator[Counter[str]]:
    """Count calls of :data:`READS` on any tensor while the block runs."""
    counts: Counter[str] = Counter()
    saved = {name: torch.Tensor.__dict__.get(name) for name in READS}
    originals = {name: getattr(torch.Tensor, name) for name in READS}

    def counting(name: str) -> Any:
        original = originals[name]

        def method(self: torch.Tensor, *args: Any, **kw: Any) -> Any:
            counts[name] += 1
            return original(self, *args, **kw)

        return method

    for name in READS:
        setattr(torch.Tensor, name, counting(name))
    try:
        yield counts
    finally:
        for name in READS:
            if saved[name] is None:
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, saved[name])
