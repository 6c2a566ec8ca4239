"""The ``sortkd-cache`` command group (installed as ``sortkd_cache.cli``).

Thin Click commands: they parse options, call ``sortkd_cache.pipelines`` and print. Heavy
imports (torch, zarr, dask) happen inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

__all__ = ["cli", "main"]


def __getattr__(name: str) -> object:
    if name in ("cli", "main"):
        from sortkd_cache.cli import main as _main

        return getattr(_main, name)
    raise AttributeError(name)
