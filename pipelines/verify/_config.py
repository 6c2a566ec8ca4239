"""The options of ``verify``: each one field, which generates the command's options (see
:mod:`sortkd_cache.options`); checked on construction, without torch (the recomputation's
own configuration, :class:`~sortkd_cache.pipelines.verify.RecomputeConfig`, is made from
it only with ``--recompute``)."""

from __future__ import annotations

from dataclasses import InitVar, dataclass
from typing import Any

from sortkd_cache.choices import SEED_MAX
from sortkd_cache.options import (
    Applies,
    Spell,
    check_applies,
    check_fields,
    cli_spell,
    opt,
    storage_opt,
)
from sortkd_cache.runtime import threads_opt

__all__ = ["VerifyConfig"]


@dataclass(frozen=True, kw_only=True)
class VerifyConfig:
    """One ``verify`` (see ``sortkd-cache verify --help``); the options of the recomputation
    (``--teacher-ckpt``, ``--seed``, ``--device``) set without ``--recompute`` are refused."""

    store: str = opt(help="The store to verify.", cli=False)  # the command's argument
    dataset: str | None = opt(
        None,
        "Your copy of the data: also check its fingerprint against the store's (and, with "
        "--recompute, recompute from it; default: where the store says it was made from).",
        metavar="SPEC",
    )
    data_root: str | None = opt(None, "Where cifar10/cifar100 live (--dataset, --recompute).",
                                applies="data")  # fmt: skip
    recompute: int | None = opt(
        None,
        "Also recompute N random sample-views (seeded, spread over views and chunks) with the "
        "store's teacher and compare them with the stored raw logits (dense rows, or a sparse "
        "store's kept entries) at a tolerance set by the stored dtype and recorded precision.",
        metavar="N",
    )
    teacher_ckpt: str | None = opt(
        None,
        "With --recompute: the store's teacher weights (refused unless their sha256 is the "
        "store's; default: the file the store records, where it still has that sha256); "
        "refused for pretrained and random teachers, which are rebuilt without it.",
        applies="recompute",
    )
    seed: int = opt(0, "With --recompute: which sample-views.", ge=0, le=SEED_MAX,
                    applies="recompute")  # fmt: skip
    device: str = opt(
        "auto",
        "With --recompute: where the teacher runs, auto | cpu | cuda[:N] (as dump and train).",
        applies="recompute",
    )
    threads: int | None = threads_opt()
    progress: bool = opt(True, "No progress bar.", names=("--no-progress",))
    storage_options: dict[str, Any] | None = storage_opt()  # noqa: RUF009
    spell: InitVar[Spell | None] = None

    def __post_init__(self, spell: Spell | None) -> None:
        spell = spell or cli_spell(VerifyConfig)
        check_fields(self, spell)
        check_applies(self, APPLIES, spell)


APPLIES: Applies = {
    "data": (
        lambda c: c.dataset is not None or c.recompute is not None,
        lambda c, s: f"without {s('dataset')} or {s('recompute')}: nothing reads the data",
    ),
    "recompute": (
        lambda c: c.recompute is not None,
        lambda c, s: f"without {s('recompute')}: it only sets how sample-views are recomputed",
    ),
}
