"""Augmentation recipes and their counter-based parameter sampling.

A recipe is a frozen description of a random augmentation; :func:`sample_params` turns it
into one int32 row per (sample, view) — ``(top, left, height, width, flip)`` — using only
:func:`~sortkd_cache.augment.counter_uniform`, so the rows are reproducible anywhere.

Draw numbers (the ``draw`` counter) used per (seed, sample index, view):

* ``crop``: draw 0 -> top, draw 1 -> left (each ``floor(u * (P - c + 1))`` where ``P`` is the
  padded size and ``c`` the crop size), draw 2 -> flip (``u < 0.5``; only if the recipe flips).
  Coordinates are in the zero-PADDED image.
* ``resized_crop``: torchvision's ``RandomResizedCrop.get_params`` algorithm, with its 10 tries
  and centre-crop fallback. Try ``t`` (0..9) uses draw ``4t`` for the area scale
  (``scale[0] + u * (scale[1] - scale[0])``), ``4t + 1`` for the log aspect ratio, ``4t + 2``
  for top and ``4t + 3`` for left; draw 40 is the flip. Widths and heights are rounded with
  round-half-to-even, as Python's ``round`` does. Coordinates are in the input image.
* ``none``: no draws; ``(0, 0, H, W, 0)``.
* ``eval`` (``eval[:SIZE]``): no draws; ``(0, 0, H, W, 0)``. The view is the reference eval
  transform (timm's and torchvision's): the shorter side resized to ``floor(SIZE /
  crop_pct)`` (antialiased, the recipe's interpolation), then a centre crop of SIZE.
  ``crop_pct`` and the interpolation are the teacher's, fixed when a store is made.

Versions (the record's ``version``; a record without one is version 1): version 2 resizes a
``resized_crop`` antialiased, as torchvision's ``RandomResizedCrop`` does; version 1 did not,
and stores that recorded it replay as they were made. The parameters are the same in both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .._registry import Registry
from ..errors import AugmentError
from ._counter import counter_uniform

__all__ = [
    "NUM_PARAMS",
    "PARAM_NAMES",
    "RECIPES",
    "CURRENT_VERSION",
    "DEFAULT_CROP_PCT",
    "VERSIONS",
    "AugmentRecipe",
    "ParamsLayout",
    "canonical_recipe",
    "get_recipe",
    "output_size",
    "sample_params",
]

RecipeKind = Literal["none", "crop", "resized_crop", "eval"]
_KINDS: tuple[str, ...] = ("none", "crop", "resized_crop", "eval")
#: The recipe version new recipes get (see the module doc); records without one are 1.
CURRENT_VERSION = 2
VERSIONS: tuple[int, ...] = (1, 2)
#: timm's and torchvision's default eval crop fraction (resize to SIZE / 0.875, crop SIZE).
DEFAULT_CROP_PCT = 0.875
EVAL_INTERPOLATIONS: tuple[str, ...] = ("nearest", "bilinear", "bicubic")

NUM_PARAMS = 5
#: The largest view side a recipe may produce (``imagenet:SIZE``), in pixels.
MAX_SIZE = 4096
PARAM_NAMES: tuple[str, ...] = ("top", "left", "height", "width", "flip")


class ParamsLayout(IntEnum):
    """Column of each field in a params row: ``params[:, ParamsLayout.TOP]``."""

    TOP = 0
    LEFT = 1
    HEIGHT = 2
    WIDTH = 3
    FLIP = 4


_RRC_TRIES = 10
_FLIP_DRAW_RRC = 4 * _RRC_TRIES


@dataclass(frozen=True)
class AugmentRecipe:
    """A random augmentation. ``out_size=None`` means "same size as the input image"."""

    name: str
    kind: RecipeKind
    pad: int = 0
    flip: bool = False
    out_size: tuple[int, int] | None = None
    scale: tuple[float, float] = (1.0, 1.0)
    ratio: tuple[float, float] = (1.0, 1.0)
    version: int = 1
    crop_pct: float | None = None  # eval: the fraction of the resized image kept (None: 0.875)
    interpolation: str = "bilinear"  # eval: the resize's interpolation

    def __post_init__(self) -> None:
        if self.version not in VERSIONS:
            raise AugmentError(f"recipe {self.name!r}: unknown version {self.version!r}")
        if self.crop_pct is not None and not 0.0 < self.crop_pct <= 1.0:
            raise AugmentError(f"recipe {self.name!r}: crop_pct must be in (0, 1]")
        if self.interpolation not in EVAL_INTERPOLATIONS:
            raise AugmentError(f"recipe {self.name!r}: bad interpolation {self.interpolation!r}")
        if self.kind != "eval" and (self.crop_pct is not None or self.interpolation != "bilinear"):
            raise AugmentError(f"recipe {self.name!r}: crop_pct applies to kind 'eval' only")
        self._check_sizes()

    def _check_sizes(self) -> None:
        if self.kind not in _KINDS:
            raise AugmentError(f"unknown recipe kind {self.kind!r}; known: {', '.join(_KINDS)}")
        if self.pad < 0:
            raise AugmentError(f"recipe {self.name!r}: pad must be >= 0, got {self.pad}")
        if self.pad and self.kind != "crop":
            raise AugmentError(f"recipe {self.name!r}: pad is only valid for kind 'crop'")
        if self.out_size is not None and (
            len(self.out_size) != 2 or not 1 <= min(self.out_size) <= max(self.out_size) <= MAX_SIZE
        ):
            raise AugmentError(
                f"recipe {self.name!r}: bad out_size {self.out_size!r} (sizes 1..{MAX_SIZE} px)"
            )
        lo, hi = self.scale
        if not (0.0 < lo <= hi):
            raise AugmentError(f"recipe {self.name!r}: bad scale {self.scale!r}")
        rlo, rhi = self.ratio
        if not (0.0 < rlo <= rhi):
            raise AugmentError(f"recipe {self.name!r}: bad ratio {self.ratio!r}")

    def to_dict(self) -> dict[str, Any]:
        """The record (version 1 records keep their exact keys: no version, no eval keys)."""
        extra: dict[str, Any] = {} if self.version == 1 else {"version": self.version}
        if self.kind == "eval":
            extra |= {"crop_pct": self.crop_pct, "interpolation": self.interpolation}
        return {
            "name": self.name,
            "kind": self.kind,
            "pad": self.pad,
            "flip": self.flip,
            "out_size": None if self.out_size is None else list(self.out_size),
            "scale": list(self.scale),
            "ratio": list(self.ratio),
        } | extra

    @property
    def antialias(self) -> bool:
        """Whether a ``resized_crop`` resize is antialiased (version 2 on)."""
        return self.version >= 2

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentRecipe:
        try:
            out = data.get("out_size")
            scale = data.get("scale", (1.0, 1.0))
            ratio = data.get("ratio", (1.0, 1.0))
            return cls(
                name=str(data["name"]),
                kind=data["kind"],
                pad=int(data.get("pad", 0)),
                flip=bool(data.get("flip", False)),
                out_size=None if out is None else (int(out[0]), int(out[1])),
                scale=(float(scale[0]), float(scale[1])),
                ratio=(float(ratio[0]), float(ratio[1])),
                version=_int(data.get("version", 1)),
                crop_pct=None if data.get("crop_pct") is None else float(data["crop_pct"]),
                interpolation=str(data.get("interpolation", "bilinear")),
            )
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            if isinstance(exc, AugmentError):
                raise
            raise AugmentError(f"malformed augmentation recipe {data!r}: {exc}") from exc


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise AugmentError(f"recipe version {value!r} is not an integer")
    return value


_IMAGENET_SCALE = (0.08, 1.0)
_IMAGENET_RATIO = (3.0 / 4.0, 4.0 / 3.0)

#: The named recipes (``imagenet:SIZE`` is ``imagenet`` with another output size).
RECIPES: Registry[AugmentRecipe] = Registry(
    "augmentation recipe", error=AugmentError, extra="(and imagenet:SIZE, eval[:SIZE])"
)
for _recipe in (
    AugmentRecipe(name="none", kind="none"),
    AugmentRecipe(name="cifar", kind="crop", pad=4, flip=True),
    AugmentRecipe(name="digits", kind="crop", pad=1, flip=False),
    AugmentRecipe(
        name="imagenet",
        kind="resized_crop",
        flip=True,
        scale=_IMAGENET_SCALE,
        ratio=_IMAGENET_RATIO,
    ),
):
    RECIPES.add(_recipe.name, _recipe)


#: The reference eval view (resize the shorter side, centre crop): a recipe of its own kind,
#: named ``eval`` or ``eval:SIZE``; the teacher's crop fraction is set when a store is made.
_EVAL = AugmentRecipe(name="eval", kind="eval")


def get_recipe(spec: str, version: int = CURRENT_VERSION) -> AugmentRecipe:
    """The recipe for ``spec``: ``none``, ``cifar``, ``digits``, ``imagenet``,
    ``imagenet:SIZE``, ``eval``, ``eval:SIZE``; at ``version`` (a store's record names its
    own; new recipes are :data:`CURRENT_VERSION`)."""
    if version not in VERSIONS:
        raise AugmentError(f"unknown recipe version {version!r}; known: {list(VERSIONS)}")
    if spec in RECIPES:
        return replace(RECIPES[spec], version=version)
    if spec == "eval":
        return replace(_EVAL, version=version)
    name, sep, arg = spec.partition(":")
    if name in ("imagenet", "eval") and sep:
        if not arg.isdigit() or int(arg) < 1:
            raise AugmentError(
                f"bad augmentation recipe {spec!r}: SIZE must be a positive integer, "
                f"got {arg!r}; expected {name}:SIZE"
            )
        size = int(arg)
        base = _EVAL if name == "eval" else RECIPES[name]
        return replace(base, name=f"{name}:{size}", out_size=(size, size), version=version)
    return RECIPES.get(spec)  # raises: unknown recipe, naming the known ones


def canonical_recipe(record: dict[str, Any]) -> AugmentRecipe:
    """The named recipe a store's record must equal: its name at its version, with (eval)
    the teacher's crop fraction and interpolation it recorded."""
    recipe = AugmentRecipe.from_dict(record)
    base = get_recipe(recipe.name, recipe.version)
    if base.kind == "eval":
        base = replace(base, crop_pct=recipe.crop_pct, interpolation=recipe.interpolation)
    return base


def output_size(recipe: AugmentRecipe, image_size: tuple[int, int] | None) -> tuple[int, int]:
    """The (h, w) of an augmented view of an image of ``image_size`` (None = variable)."""
    if recipe.out_size is not None:
        return (int(recipe.out_size[0]), int(recipe.out_size[1]))
    if image_size is None:
        raise AugmentError(
            f"recipe {recipe.name!r} keeps the input size, but the images have variable sizes; "
            "give an explicit output size (e.g. imagenet:224)"
        )
    return (int(image_size[0]), int(image_size[1]))


def _sizes_for(indices: npt.NDArray[np.int64], image_sizes: npt.ArrayLike) -> npt.NDArray[np.int64]:
    sizes = np.asarray(image_sizes, dtype=np.int64)
    if sizes.shape == (2,):
        sizes = np.broadcast_to(sizes, (len(indices), 2))
    if sizes.shape != (len(indices), 2):
        raise AugmentError(
            f"image_sizes must have shape [2] or [{len(indices)}, 2] (one (H, W) per index), "
            f"got {list(sizes.shape)}"
        )
    if len(sizes) and sizes.min() < 1:
        raise AugmentError(f"image sizes must be positive, got min {int(sizes.min())}")
    return sizes


def sample_params(
    recipe: AugmentRecipe,
    seed: int,
    indices: npt.ArrayLike,
    view: int,
    image_sizes: npt.ArrayLike,
) -> npt.NDArray[np.int32]:
    """Augmentation parameters int32 [B, 5] for samples ``indices`` (dataset indices) at ``view``.

    ``image_sizes`` is the (H, W) of each indexed image, shape [B, 2], or one [2] for all.
    Row b depends only on ``(seed, indices[b], view)`` and the image's size.
    """
    idx = np.asarray(indices)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise AugmentError(f"indices must be a 1-D integer array, got shape {list(idx.shape)}")
    idx = idx.astype(np.int64)
    if idx.size and idx.min() < 0:
        raise AugmentError(f"sample indices must be >= 0, got {int(idx.min())}")
    if view < 0:
        raise AugmentError(f"view must be >= 0, got {view}")
    sizes = _sizes_for(idx, image_sizes)
    height, width = sizes[:, 0], sizes[:, 1]
    out = np.zeros((len(idx), NUM_PARAMS), dtype=np.int64)
    if recipe.kind in ("none", "eval"):
        out[:, ParamsLayout.HEIGHT] = height
        out[:, ParamsLayout.WIDTH] = width
    elif recipe.kind == "crop":
        _sample_crop(recipe, seed, idx, view, height, width, out)
    else:
        _sample_resized_crop(recipe, seed, idx, view, height, width, out)
    return out.astype(np.int32)


def _sample_crop(
    recipe: AugmentRecipe,
    seed: int,
    idx: npt.NDArray[np.int64],
    view: int,
    height: npt.NDArray[np.int64],
    width: npt.NDArray[np.int64],
    out: npt.NDArray[np.int64],
) -> None:
    padded_h = height + 2 * recipe.pad
    padded_w = width + 2 * recipe.pad
    if recipe.out_size is None:
        crop_h, crop_w = height, width
    else:
        crop_h = np.full_like(height, recipe.out_size[0])
        crop_w = np.full_like(width, recipe.out_size[1])
    if np.any(crop_h > padded_h) or np.any(crop_w > padded_w):
        raise AugmentError(
            f"recipe {recipe.name!r}: crop {recipe.out_size} larger than a padded image"
        )
    u = counter_uniform(seed, idx[:, None], view, np.arange(3, dtype=np.int64)[None, :])
    out[:, ParamsLayout.TOP] = np.floor(u[:, 0] * (padded_h - crop_h + 1))
    out[:, ParamsLayout.LEFT] = np.floor(u[:, 1] * (padded_w - crop_w + 1))
    out[:, ParamsLayout.HEIGHT] = crop_h
    out[:, ParamsLayout.WIDTH] = crop_w
    if recipe.flip:
        out[:, ParamsLayout.FLIP] = u[:, 2] < 0.5


def _sample_resized_crop(
    recipe: AugmentRecipe,
    seed: int,
    idx: npt.NDArray[np.int64],
    view: int,
    height: npt.NDArray[np.int64],
    width: npt.NDArray[np.int64],
    out: npt.NDArray[np.int64],
) -> None:
    draws = np.arange(_FLIP_DRAW_RRC + 1, dtype=np.int64)
    u = counter_uniform(seed, idx[:, None], view, draws[None, :])  # [B, 41]
    tries = u[:, :_FLIP_DRAW_RRC].reshape(len(idx), _RRC_TRIES, 4)
    area = (height * width).astype(np.float64)[:, None]
    lo, hi = recipe.scale
    target_area = area * (lo + tries[..., 0] * (hi - lo))
    log_lo, log_hi = math.log(recipe.ratio[0]), math.log(recipe.ratio[1])
    aspect = np.exp(log_lo + tries[..., 1] * (log_hi - log_lo))
    w = np.rint(np.sqrt(target_area * aspect)).astype(np.int64)
    h = np.rint(np.sqrt(target_area / aspect)).astype(np.int64)
    ok = (w > 0) & (w <= width[:, None]) & (h > 0) & (h <= height[:, None])
    found = ok.any(axis=1)
    first = np.argmax(ok, axis=1)
    rows = np.arange(len(idx))
    h_sel, w_sel = h[rows, first], w[rows, first]
    top = np.floor(tries[rows, first, 2] * (height - h_sel + 1)).astype(np.int64)
    left = np.floor(tries[rows, first, 3] * (width - w_sel + 1)).astype(np.int64)
    # Fallback: the torchvision centre crop, clamping the aspect ratio into ``ratio``.
    in_ratio = width / height
    fb_w = np.where(
        in_ratio < recipe.ratio[0],
        width,
        np.where(in_ratio > recipe.ratio[1], np.rint(height * recipe.ratio[1]), width),
    ).astype(np.int64)
    fb_h = np.where(in_ratio < recipe.ratio[0], np.rint(width / recipe.ratio[0]), height).astype(
        np.int64
    )
    fb_top = (height - fb_h) // 2
    fb_left = (width - fb_w) // 2
    out[:, ParamsLayout.TOP] = np.where(found, top, fb_top)
    out[:, ParamsLayout.LEFT] = np.where(found, left, fb_left)
    out[:, ParamsLayout.HEIGHT] = np.where(found, h_sel, fb_h)
    out[:, ParamsLayout.WIDTH] = np.where(found, w_sel, fb_w)
    if recipe.flip:
        out[:, ParamsLayout.FLIP] = u[:, _FLIP_DRAW_RRC] < 0.5
