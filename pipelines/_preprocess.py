"""The teacher's preprocessing of a dump: its own (timm's data config, torchvision's weight
transforms, else the dataset's normalisation), with the command line's fields over it; and
the one a store records (a store made before the record reads as the dataset's)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sortkd_cache.errors import ConfigError
from sortkd_cache.models import (
    INTERPOLATIONS,
    TeacherPreprocess,
    native_preprocess,
    parse_floats,
    parse_size,
)

if TYPE_CHECKING:
    import torch

    from sortkd_cache.store import StoreMeta

__all__ = ["PreprocessOptions", "recorded_preprocess", "resolve_preprocess"]


class PreprocessOptions:
    """The command line's ``--teacher-mean/-std/-size/-interpolation``, parsed."""

    def __init__(
        self,
        mean: str | None = None,
        std: str | None = None,
        size: str | None = None,
        interpolation: str | None = None,
    ) -> None:
        self.mean = parse_floats("--teacher-mean", mean)
        self.std = parse_floats("--teacher-std", std)
        self.size = parse_size("--teacher-size", size)
        if interpolation is not None and interpolation not in INTERPOLATIONS:
            raise ConfigError(
                f"--teacher-interpolation {interpolation!r}: use {', '.join(INTERPOLATIONS)}"
            )
        self.interpolation = interpolation

    @classmethod
    def of(cls, cfg: Any) -> PreprocessOptions:
        """From a config with ``teacher_mean/std/size/interpolation`` fields."""
        return cls(cfg.teacher_mean, cfg.teacher_std, cfg.teacher_size, cfg.teacher_interpolation)


def resolve_preprocess(
    arch: str,
    model: torch.nn.Module | None,
    init: str,
    info: Any,
    options: PreprocessOptions,
) -> TeacherPreprocess:
    """What teacher ``arch`` (built as ``model``) sees of a view of a dataset with ``info``."""
    dataset = TeacherPreprocess.for_dataset(info.mean, info.std)
    own = native_preprocess(arch, model, init == "pretrained", dataset, options.interpolation)
    out = own.override(
        mean=options.mean,
        std=options.std,
        input_size=options.size,
        interpolation=options.interpolation,
    )
    out.check_channels(int(info.channels))
    return out


def recorded_preprocess(meta: StoreMeta) -> TeacherPreprocess:
    """The preprocessing a store's teacher saw (the dataset's when none is recorded)."""
    record = meta.teacher.preprocess
    if record is None:
        return TeacherPreprocess.for_dataset(meta.dataset.mean, meta.dataset.std)
    return TeacherPreprocess.from_dict(record)
