"""The ``eval`` recipe's view: the reference eval transform, pixel for pixel.

timm's ``transforms_imagenet_eval`` (crop mode ``center``) and torchvision's eval presets
resize the image's shorter side to ``floor(SIZE / crop_pct)`` with PIL (antialiased by
construction) and crop the centre ``SIZE x SIZE``. :func:`eval_crop` makes the same PIL
calls on the same PIL image, so a view equals the reference's bit for bit
(a tensor resize differs from PIL's by 1 in a few pixels). It runs on the CPU; the view comes
back on the image's device.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from ..errors import AugmentError
from ._recipes import DEFAULT_CROP_PCT, AugmentRecipe

__all__ = ["eval_crop", "eval_size"]

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}


def eval_size(recipe: AugmentRecipe) -> tuple[int, int]:
    """The ``(SIZE, SIZE)`` of an ``eval`` recipe's views (refused when it has none)."""
    if recipe.out_size is None:
        raise AugmentError(
            f"recipe {recipe.name!r} has no view size: give eval:SIZE (or a teacher with an "
            "input size, which `dump` takes)"
        )
    return recipe.out_size


def eval_crop(img: torch.Tensor, recipe: AugmentRecipe) -> torch.Tensor:
    """One uint8 ``[C, H, W]`` image's eval view ``[C, SIZE, SIZE]`` (see the module doc):
    torchvision's ``resize`` of a PIL image to a shorter side (the longer one truncated, as
    it computes it) and its ``center_crop`` (offsets rounded half to even), on PIL."""
    size = eval_size(recipe)
    crop_pct = recipe.crop_pct if recipe.crop_pct is not None else DEFAULT_CROP_PCT
    pixels = img.detach().cpu().permute(1, 2, 0).numpy()
    pil = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    short = math.floor(size[0] / crop_pct)
    w, h = pil.size
    new_w, new_h = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    if (new_w, new_h) != (w, h):
        pil = pil.resize((new_w, new_h), _RESAMPLE[recipe.interpolation])
    top, left = round((new_h - size[0]) / 2.0), round((new_w - size[1]) / 2.0)
    pil = pil.crop((left, top, left + size[1], top + size[0]))
    out = torch.from_numpy(np.array(pil, dtype=np.uint8).reshape(size[0], size[1], -1))
    return out.permute(2, 0, 1).contiguous().to(img.device)
