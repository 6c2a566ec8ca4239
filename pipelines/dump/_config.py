"""The configuration of one dump, validated whole on construction (before any work).

Each option is one :func:`~sortkd_cache.options.opt` field: its metadata generates the
``dump`` command's options and the recipe's ``[dump]`` keys with their checks.
"""

from __future__ import annotations

from dataclasses import InitVar, asdict, dataclass, fields
from typing import Any

from sortkd_cache.augment import get_recipe
from sortkd_cache.choices import DECODERS, PRECISIONS, SEED_MAX, SPLITS, TEACHER_INITS
from sortkd_cache.errors import ConfigError
from sortkd_cache.options import (
    Applies,
    Spell,
    check_applies,
    check_fields,
    flag,
    named,
    opt,
    opt_of,
)
from sortkd_cache.sparse import check_quantize_options, check_sample_options, parse_temperatures

__all__ = ["DTYPES", "DumpConfig", "check_sample_options", "parse_temperatures"]

#: Dtypes of the stored logits.
DTYPES = ("float16", "float32")


@dataclass(frozen=True, kw_only=True)
class DumpConfig:
    """One dump (see ``sortkd-cache dump --help`` for each option)."""

    dataset: str = opt(help="Dataset SPEC, e.g. digits, imagefolder:PATH, fake:N:C:SIZE "
                       "(all kinds: sortkd-cache list datasets).")  # fmt: skip
    teacher: str = opt(
        help="Teacher architecture: a registry or torchvision name (sortkd-cache list models) "
        "or timm:NAME (pip install 'sortkd-cache[timm]')."
    )
    out: str = opt(help="Store directory to write.")
    views: int = opt(4, "Augmented views per sample (V).", ge=1, le=2**16, recipe=True,
                     hashed=True)  # fmt: skip
    seed: int = opt(0, "Seed of the view parameters.", ge=0, le=SEED_MAX, recipe=True,
                    hashed=True)  # fmt: skip
    augment: str | None = opt(None, "Augmentation recipe (default: the dataset's; names: "
                              "sortkd-cache list augment).", recipe=True,
                              hashed=True)  # fmt: skip
    teacher_ckpt: str | None = opt(None, "Weights: .safetensors or a weights-only state_dict.")
    teacher_init: str = opt(
        "checkpoint",
        "'pretrained': the published weights of a timm: or torchvision model, from the local "
        "Hugging Face / torch hub cache (downloaded where online; HF_HUB_OFFLINE=1 refuses). "
        "'random' dumps an untrained teacher (tests and benchmarks). Recorded in the store.",
        choices=TEACHER_INITS,
    )
    split: str = opt("train", "Dataset split to dump.", choices=SPLITS)
    data_root: str | None = opt(None, "Where cifar10/cifar100 live.")
    download: bool = opt(False, "Let torchvision download cifar10/cifar100 into --data-root.")
    dtype: str = opt("float16", "Dtype of the stored logits.", choices=DTYPES, recipe=True,
                     hashed=True)  # fmt: skip
    batch_size: int = opt(256, "Teacher micro-batch.", ge=1, le=2**20, recipe=True,
                         hashed=True)  # fmt: skip
    chunk_samples: int | None = opt(None, "Samples per chunk (default: ~2 MiB chunks).",
                                    ge=1, le=2**24, recipe=True, hashed=True)  # fmt: skip
    device: str = opt("auto", "auto | cpu | cuda[:N]")
    precision: str = opt(
        "fp32",
        "Teacher forward: fp32 (exact, reproducible) | bf16 | fp16 (autocast; channels_last "
        "on CUDA). fp16 is for CUDA (on a CPU: slow). Recorded in the store.",
        choices=PRECISIONS, recipe=True,
    )  # fmt: skip
    workers: int | None = opt(
        None,
        "Image decoders for folder datasets (default: CPUs, at most 8). The store does not "
        "depend on it.",
        ge=1, le=256,
    )  # fmt: skip
    decoder: str = opt(
        "pil",
        "pil | nvjpeg: nvjpeg decodes a block's JPEGs in one batch on the GPU (CUDA, "
        "imagefolder only; its pixels can differ from PIL's by JPEG rounding; recorded).",
        choices=DECODERS,
    )
    resume: bool = opt(False, "Continue an interrupted dump into the same store.")
    overwrite: bool = opt(False, "Replace an existing store.")
    progress: bool = opt(True, "Progress bar.", names=("--progress/--no-progress",))
    rank: int = opt(0, ge=0, cli=False)
    world_size: int = opt(1, ge=1, cli=False)
    topk: int | None = opt(
        None,
        "Store sparse soft labels: per sample-view the K largest logits with their class "
        "ids, the label's logit, the row's mean/std and the tail's exact mass at the recorded "
        "temperatures (4K+14 bytes with float16, C <= 65536). No dense logits are written.",
        ge=1, le=2**16, recipe=True,
    )  # fmt: skip
    topk_temperatures: str | None = opt(
        None,
        "Temperatures at which --topk records the exact tail mass [default: 1,2,4].",
        applies="topk", recipe=True,
    )  # fmt: skip
    sample: int | None = opt(
        None,
        "Store sampled soft labels: per sample-view S draws (1..255, with replacement) from "
        "the teacher's softmax at --proposal-temperature, kept as unique class ids with "
        "counts, their logits and the row's statistics; KD, DKD and LSKD from them are "
        "unbiased (docs/sparse.md). No dense logits are written.",
        recipe=True,
    )  # fmt: skip
    proposal_temperature: float | None = opt(
        None, "The temperature --sample draws at [default: 4, the losses' T].",
        applies="sample", recipe=True,
    )  # fmt: skip
    sample_head: int | None = opt(
        None,
        "Keep the teacher's top H classes exactly and draw --sample S from the rest (the "
        "hybrid row; variance scaled by the tail mass squared) [default: 0, draws only].",
        applies="sample", recipe=True,
    )  # fmt: skip
    quantize: int | None = opt(
        None,
        "Store quantized soft labels: every class's logit in B bits (2..8), evenly spaced "
        "levels from the row's max to its min, with the max and step per row "
        "(ceil(C*B/8)+4 bytes with float16; every loss, CTKD included). No dense logits are "
        "written.",
        recipe=True,
    )  # fmt: skip
    # The teacher's preprocessing over its own (timm / torchvision weights / the dataset's):
    teacher_mean: str | None = opt(
        None,
        "The teacher's normalisation mean, e.g. 0.5,0.5,0.5 [default: timm's data config, "
        "torchvision's weight transforms, else the dataset's]. Recorded.",
    )
    teacher_std: str | None = opt(None, "The teacher's std (as --teacher-mean).")
    teacher_size: str | None = opt(
        None,
        "SIZE or H,W: views are resized to it for the teacher [default: the teacher's input "
        "size; the view's own for non-timm teachers without pretrained weights].",
    )
    teacher_interpolation: str | None = opt(
        None, "Resize interpolation for --teacher-size [default: the teacher's].",
        choices=("nearest", "bilinear", "bicubic"),
    )  # fmt: skip
    spell: InitVar[Spell | None] = None

    def __post_init__(self, spell: Spell | None) -> None:
        spell = spell or flag
        check_fields(self, spell)
        if self.overwrite and self.resume:
            raise ConfigError(f"{spell('resume')} and {spell('overwrite')} exclude each other")
        if not self.rank < self.world_size:
            raise ConfigError(f"bad rank {self.rank} for world size {self.world_size}")
        check_applies(self, APPLIES, spell)
        parse_temperatures(self.topk_temperatures, spell("topk_temperatures"))
        check_sample_options(self, spell)
        check_quantize_options(self, spell)
        _check_names(self, spell)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DumpConfig:
        return cls(**d)


def _check_names(cfg: DumpConfig, spell: Spell) -> None:
    """The dataset spec, the augmentation recipe and the preprocessing parse (no file read)."""
    from sortkd_cache.datasets import parse_dataset_spec
    from sortkd_cache.pipelines.common.preprocess import PreprocessOptions

    named(spell("dataset"), lambda: parse_dataset_spec(cfg.dataset))
    if cfg.augment is not None:
        augment = cfg.augment
        named(spell("augment"), lambda: get_recipe(augment))
    PreprocessOptions.of(cfg)


APPLIES: Applies = {
    "topk": (lambda c: c.topk is not None, lambda c, s: f"without {s('topk')}"),
    "sample": (lambda c: c.sample is not None, lambda c, s: f"without {s('sample')}"),
}


def recipe_keys() -> tuple[str, ...]:
    """The dump options a recipe's ``[dump]`` table may set."""
    return tuple(f.name for f in fields(DumpConfig) if opt_of(f).recipe)
