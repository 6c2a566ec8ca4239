"""The teacher's preprocessing of a dump: its own (timm's data config, torchvision's weight
transforms, else the dataset's normalisation), with the command line's fields over it; and
the one a store records (a store made before the record reads as the dataset's)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sortkd_cache import models
from sortkd_cache.augment import DEFAULT_CROP_PCT
from sortkd_cache.errors import ConfigError
from sortkd_cache.models import (
    INTERPOLATIONS,
    TeacherPreprocess,
    parse_floats,
    parse_size,
)

if TYPE_CHECKING:
    import numpy as np
    import torch

    from sortkd_cache.augment import AugmentRecipe
    from sortkd_cache.store import StoreMeta

__all__ = [
    "PreprocessOptions",
    "check_teacher_input",
    "check_view_shapes",
    "recorded_preprocess",
    "resolve_preprocess",
    "teacher_recipe",
]


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
    own = models.native_preprocess(
        arch, model, init == "pretrained", dataset, options.interpolation
    )
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


def teacher_recipe(recipe: AugmentRecipe, prep: TeacherPreprocess) -> AugmentRecipe:
    """``recipe`` as a store records it: an ``eval`` recipe takes the teacher's crop
    fraction and interpolation, and its input size where ``eval`` gave no SIZE (refused
    when the teacher has none); the others are unchanged."""
    if recipe.kind != "eval":
        return recipe
    size = recipe.out_size or prep.input_size
    if size is None:
        raise ConfigError(
            "--augment eval: the teacher has no input size of its own; give eval:SIZE"
        )
    if size[0] != size[1]:
        raise ConfigError(
            f"--augment eval: the teacher's input {size} is not square; give eval:SIZE"
        )
    return replace(
        recipe,
        name=f"eval:{size[0]}",
        out_size=(size[0], size[0]),
        crop_pct=recipe.crop_pct or prep.crop_pct or DEFAULT_CROP_PCT,
        interpolation=prep.interpolation,
    )


def check_view_shapes(recipe: AugmentRecipe, prep: TeacherPreprocess, ds: Any) -> None:
    """Refuse (one line, exit 2) views that the teacher's resize would squash: under ``none``
    the view is the image itself, and an image whose shape is not the teacher's input shape
    would be resized to it, changing its aspect ratio (``ds``: the dataset, whose image
    sizes are read only then)."""
    target = prep.input_size
    if recipe.kind != "none" or target is None or len(ds) == 0:
        return
    sizes: np.ndarray = ds.image_sizes()
    bad = sizes[:, 0] * target[1] != sizes[:, 1] * target[0]
    if bad.any():
        i = int(bad.argmax())
        h, w = (int(x) for x in sizes[i])
        raise ConfigError(
            f"--augment none: image {i} is {h}x{w}, and the teacher's {target[0]}x{target[1]} "
            "input would squash it; use --augment eval (resize the shorter side, centre crop)"
        )


def check_teacher_input(
    model: torch.nn.Module, prep: TeacherPreprocess, view: tuple[int, int] | None, cfg: Any
) -> None:
    """Run the teacher once on one blank input of the size it will see (``prep``'s input
    size, else the ``view`` size; None: views vary, nothing to try), before anything is
    written: a size it cannot take is one ConfigError naming the option that chose it
    (``--teacher-size``, else ``--augment``)."""
    import torch  # a dump's check: info and verify read the record without torch

    size = prep.input_size or view
    if size is None:
        return
    device = next(model.parameters(), torch.empty(0)).device
    x = torch.zeros((1, len(prep.mean), *size), device=device)
    try:
        with torch.inference_mode():
            model(x)
    except (RuntimeError, ValueError) as exc:
        given = cfg.teacher_size
        option = f"--teacher-size {given}" if given else f"--augment {cfg.augment or 'default'}"
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(
            f"{option}: the teacher cannot take {size[0]}x{size[1]} inputs ({first[:200]})"
        ) from None
