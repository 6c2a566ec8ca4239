"""A command's public names, imported on first use (PEP 562).

Each command's package (``sortkd_cache.pipelines.dump``, ``.train``, ...) exposes its public
names lazily, so that importing it for a configuration (``from sortkd_cache.pipelines.train
import TrainConfig``: no torch) does not import the stage that runs it (torch, zarr, dask).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package``: each name of ``names`` (name -> the module
    of the package that defines it, relative like ``"._config"``) imported when first read."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
