"""The configuration of one sort run: each option one field, which generates the ``sort``
command's options (see :mod:`sortkd_cache.options`); checked on construction."""

from __future__ import annotations

from dataclasses import InitVar, dataclass
from typing import Any

from sortkd_cache.options import Spell, check_fields, cli_spell, opt
from sortkd_cache.sorting import METHODS

__all__ = ["SortConfig"]


@dataclass(frozen=True, kw_only=True)
class SortConfig:
    """One sort run (see ``sortkd-cache sort --help``)."""

    store: str = opt(help="The store to sort.", cli=False)  # the command's argument
    method: str = opt("sort", "The comparison method.", choices=lambda: tuple(METHODS.names()))
    out: str | None = opt(None, "Write into a new store (source left untouched).")
    scheduler: str | None = opt(
        None,
        "dask.distributed scheduler address, e.g. tcp://10.0.0.5:8786 (default: local threads).",
    )
    overwrite: bool = opt(False, "Recompute even when the method's logits exist.")
    progress: bool = opt(True, "Progress bars.", names=("--progress/--no-progress",))
    num_workers: int | None = opt(None, "Local threads (default: all cores).", ge=1, le=1024,
                                  names=("--workers",))  # fmt: skip
    storage_options: dict[str, Any] | None = opt(None, cli=False)  # noqa: RUF009
    spell: InitVar[Spell | None] = None

    def __post_init__(self, spell: Spell | None) -> None:
        check_fields(self, spell or cli_spell(SortConfig))
