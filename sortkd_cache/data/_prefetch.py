"""Whole views read in background threads, off the training loop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    import numpy as np
    import torch

T = TypeVar("T")

__all__ = ["Prefetcher", "ViewPrefetcher"]


class Prefetcher(Generic[T]):
    """Loads views in background threads (``load(view)``, read ahead by ``prefetch``);
    ``take(view)`` waits for one and returns it, re-raising what its load raised."""

    def __init__(self, load: Callable[[int], T]) -> None:
        self._load_view = load
        self._cache: dict[int, T] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._errors: dict[int, BaseException] = {}

    def _load(self, view: int) -> None:
        try:
            self._cache[view] = self._load_view(view)
        except BaseException as exc:  # re-raised in take()
            self._errors[view] = exc

    def prefetch(self, view: int) -> None:
        if view in self._cache or view in self._threads:
            return
        th = threading.Thread(target=self._load, args=(view,), daemon=True)
        self._threads[view] = th
        th.start()

    def take(self, view: int) -> T:
        self.prefetch(view)
        thread = self._threads.pop(view, None)
        if thread is not None:
            thread.join()
        if view in self._errors:
            raise self._errors.pop(view)
        return self._cache.pop(view)

    def close(self) -> None:
        for thread in self._threads.values():
            thread.join()
        self._threads.clear()
        self._cache.clear()
        self._errors.clear()


class ViewPrefetcher(Prefetcher["torch.Tensor"]):
    """Reads a view's soft logits in a background thread; ``get(view)`` returns them on device."""

    def __init__(self, read: Callable[[int], np.ndarray], device: torch.device) -> None:
        super().__init__(self._host)
        self._read, self._device = read, device

    def _host(self, view: int) -> torch.Tensor:
        import torch

        t = torch.from_numpy(self._read(view))
        return t.pin_memory() if self._device.type == "cuda" else t

    def get(self, view: int) -> torch.Tensor:
        return self.take(view).to(self._device, non_blocking=True)
