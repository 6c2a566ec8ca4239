"""What ``copy --topk/--sample/--quantize/--views/--dtype`` derives: each option one field,
which generates the ``copy`` command's options (see :mod:`sortkd_cache.options`); checked on
construction."""

from __future__ import annotations

from dataclasses import InitVar, dataclass

from sortkd_cache.options import Applies, Spell, check_applies, check_fields, flag, opt
from sortkd_cache.sparse import check_quantize_options, check_sample_options, parse_temperatures

__all__ = ["DeriveConfig"]


@dataclass(frozen=True, kw_only=True)
class DeriveConfig:
    """A re-sliced copy (nothing derived when every field is None)."""

    topk: int | None = opt(
        None,
        "Convert dense logits to sparse top-K soft labels (every kind; fidelity recorded).",
        ge=1, le=2**16,
    )  # fmt: skip
    #: "0,2,5": the source views to keep, in this order (checked against the source)
    views: str | None = opt(None, "Keep only these source views, e.g. 0,2,3.")
    dtype: str | None = opt(None, "Narrow float32 logits to float16.", choices=("float16",
                            "float32"))  # fmt: skip
    topk_temperatures: str | None = opt(
        None,
        "Temperatures at which --topk records the exact tail mass [default: 1,2,4].",
        applies="topk",
    )
    sample: int | None = opt(
        None,
        "Convert dense logits to sampled soft labels: S draws per sample-view from the "
        "teacher's softmax (every kind; sorted kinds sample their sorted rows; fidelity "
        "recorded).",
    )
    proposal_temperature: float | None = opt(
        None, "The temperature --sample draws at [default: 4].", applies="sample"
    )
    sample_head: int | None = opt(
        None,
        "Keep the teacher's top H classes exactly and draw --sample S from the rest "
        "[default: 0, draws only].",
        applies="sample",
    )
    quantize: int | None = opt(
        None,
        "Convert dense logits to quantized soft labels: every class's logit in B bits, 2 to 8 "
        "(every kind; sorted kinds are the sort of the quantized raw rows; fidelity recorded).",
    )
    spell: InitVar[Spell | None] = None

    def __post_init__(self, spell: Spell | None) -> None:
        spell = spell or flag
        check_fields(self, spell)
        check_applies(self, APPLIES, spell)
        parse_temperatures(self.topk_temperatures, spell("topk_temperatures"))
        check_sample_options(self, spell)
        check_quantize_options(self, spell)

    @property
    def derive(self) -> str | None:
        """The option that changes the rows' form (``--topk``, ``--sample``, ``--quantize``),
        spelled as the command line does; None when none is given."""
        for name in ("topk", "sample", "quantize"):
            if getattr(self, name) is not None:
                return flag(name)
        return None

    @property
    def active(self) -> bool:
        return any(
            x is not None for x in (self.topk, self.sample, self.quantize, self.views, self.dtype)
        )


APPLIES: Applies = {
    "topk": (lambda c: c.topk is not None, lambda c, s: f"without {s('topk')}"),
    "sample": (lambda c: c.sample is not None, lambda c, s: f"without {s('sample')}"),
}
