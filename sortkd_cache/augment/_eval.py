"""The ``eval`` recipe's view: the reference eval transform, pixel for pixel.

timm's ``transforms_imagenet_eval`` (crop mode ``center``) and torchvision's eval presets
resize the image's shorter side to ``floor(SIZE / crop_pct)`` with PIL (antialiased by
construction) and crop the centre ``SIZE x SIZE``. :func:`eval_crop` runs those same
torchvision functions on the same PIL image, so a view equals the reference's bit for bit
(a tensor resize differs from PIL's by 1 in a few pixels). It runs on the CPU; the view comes
back on the image's device.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import AugmentError
from ._recipes import DEFAULT_CROP_PCT, AugmentRecipe

__all__ = ["eval_crop", "eval_size"]


def eval_size(recipe: AugmentRecipe) -> tuple[int, int]:
    """The ``(SIZE, SIZE)`` of an ``eval`` recipe's views (refused when it has none)."""
    if recipe.out_size is None:
        raise AugmentError(
            f"recipe {recipe.name!r} has no view size: give eval:SIZE (or a teacher with an "
            "input size, which `dump` takes)"
        )
    return recipe.out_size


def eval_crop(img: torch.Tensor, recipe: AugmentRecipe) -> torch.Tensor:
    """One uint8 ``[C, H, W]`` image's eval view ``[C, SIZE, SIZE]`` (see the module doc)."""
    import torchvision.transforms.functional as tf
    from PIL import Image
    from torchvision.transforms import InterpolationMode

    size = eval_size(recipe)
    crop_pct = recipe.crop_pct if recipe.crop_pct is not None else DEFAULT_CROP_PCT
    pixels = img.detach().cpu().permute(1, 2, 0).numpy()
    pil = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    mode = InterpolationMode(recipe.interpolation)
    pil = tf.resize(pil, math.floor(size[0] / crop_pct), interpolation=mode)
    pil = tf.center_crop(pil, list(size))
    out = torch.from_numpy(np.array(pil, dtype=np.uint8).reshape(size[0], size[1], -1))
    return out.permute(2, 0, 1).contiguous().to(img.device)
