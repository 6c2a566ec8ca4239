"""Apply recorded augmentation parameters to uint8 images, on the images' own device.

``replay`` is exact: the same images and params give the same pixels every time. Crop
recipes are vectorised (pad once, then one ``gather`` with index arithmetic; a flip reverses
the column index). ``resized_crop`` crops each image, resizes it with
``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` on float32
(antialiased from recipe version 2 on, as torchvision's ``RandomResizedCrop``; version 1
records replay without), flips the result if asked, then rounds (half to even) and clamps to
uint8. ``eval`` views are the reference eval transform (:mod:`._eval`), on the CPU.

Across devices: crop recipes give bit-identical pixels on CPU and CUDA (pure indexing). The
bilinear resize of ``resized_crop`` is float arithmetic, so a CPU and a CUDA replay of the
same params can differ by 1 in a few pixels (seen: ~0.05% of pixels on an H200 vs CPU); a
replay on the same device type is exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from ..errors import AugmentError
from ._eval import eval_crop, eval_size
from ._recipes import NUM_PARAMS, AugmentRecipe, ParamsLayout

__all__ = ["check_params", "eval_view", "normalize", "replay"]

Images = torch.Tensor | Sequence[torch.Tensor]


def _as_params(params: npt.ArrayLike | torch.Tensor, batch: int) -> npt.NDArray[np.int64]:
    if isinstance(params, torch.Tensor):
        params = params.detach().cpu().numpy()
    arr = np.asarray(params)
    if arr.shape != (batch, NUM_PARAMS) or (arr.size and arr.dtype.kind not in "iu"):
        raise AugmentError(
            f"params must be an integer array of shape [{batch}, {NUM_PARAMS}], "
            f"got {arr.dtype} {list(arr.shape)}"
        )
    return arr.astype(np.int64)


def check_params(
    params: npt.ArrayLike | torch.Tensor,
    recipe: AugmentRecipe,
    image_sizes: npt.ArrayLike,
) -> npt.NDArray[np.int64]:
    """Validate recorded params against the images' (H, W) [B, 2]; return them as int64.

    Raises :class:`AugmentError` naming the first bad row.
    """
    sizes = np.asarray(image_sizes, dtype=np.int64).reshape(-1, 2)
    arr = _as_params(params, len(sizes))
    if recipe.kind in ("none", "eval") or len(arr) == 0:
        return arr
    pad = recipe.pad if recipe.kind == "crop" else 0
    top, left = arr[:, ParamsLayout.TOP], arr[:, ParamsLayout.LEFT]
    h, w = arr[:, ParamsLayout.HEIGHT], arr[:, ParamsLayout.WIDTH]
    flip = arr[:, ParamsLayout.FLIP]
    bad = (
        (top < 0)
        | (left < 0)
        | (h < 1)
        | (w < 1)
        | (top + h > sizes[:, 0] + 2 * pad)
        | (left + w > sizes[:, 1] + 2 * pad)
        | ((flip != 0) & (flip != 1))
    )
    if bad.any():
        row = int(np.argmax(bad))
        raise AugmentError(
            f"params row {row} {arr[row].tolist()} out of range for recipe {recipe.name!r} "
            f"and image size {sizes[row].tolist()}"
        )
    return arr


def _sizes_of(images: Images) -> npt.NDArray[np.int64]:
    if isinstance(images, torch.Tensor):
        if images.dim() != 4 or images.dtype != torch.uint8:
            raise AugmentError(
                f"images must be a uint8 tensor [B, C, H, W], got {images.dtype} "
                f"{list(images.shape)}"
            )
        return np.tile(np.array(images.shape[2:], dtype=np.int64), (images.shape[0], 1))
    for k, img in enumerate(images):
        if not isinstance(img, torch.Tensor) or img.dim() != 3 or img.dtype != torch.uint8:
            raise AugmentError(f"image {k} must be a uint8 tensor [C, H, W]")
    return np.array([img.shape[1:] for img in images], dtype=np.int64).reshape(-1, 2)


def _stack(views: list[torch.Tensor], recipe: AugmentRecipe) -> torch.Tensor:
    shapes = {tuple(v.shape) for v in views}
    if len(shapes) > 1:
        raise AugmentError(
            f"recipe {recipe.name!r} gives views of different sizes {sorted(shapes)}; "
            "give an explicit output size (e.g. imagenet:224)"
        )
    if not views:
        raise AugmentError("cannot stack an empty list of images")
    return torch.stack(views)


def _target(
    recipe: AugmentRecipe, out_size: tuple[int, int] | None, image: torch.Tensor
) -> tuple[int, int]:
    if out_size is not None:
        return (int(out_size[0]), int(out_size[1]))
    if recipe.out_size is not None:
        return recipe.out_size
    return (int(image.shape[-2]), int(image.shape[-1]))


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.round().clamp_(0.0, 255.0).to(torch.uint8)


def _crop_batch(
    images: torch.Tensor,
    p: npt.NDArray[np.int64],
    pad: int,
    on_device: torch.Tensor | None = None,
) -> torch.Tensor:
    b, c, _, width = images.shape
    h, w = int(p[0, ParamsLayout.HEIGHT]), int(p[0, ParamsLayout.WIDTH])
    if np.any(p[:, ParamsLayout.HEIGHT] != h) or np.any(p[:, ParamsLayout.WIDTH] != w):
        raise AugmentError("crop params of one batch must share one crop size")
    x = F.pad(images, (pad, pad, pad, pad)) if pad else images
    pw = width + 2 * pad
    dev = images.device
    if on_device is not None:  # the same params, already where the images are
        top, left = on_device[:, ParamsLayout.TOP], on_device[:, ParamsLayout.LEFT]
        flip = on_device[:, ParamsLayout.FLIP] != 0
    else:
        top = torch.from_numpy(p[:, ParamsLayout.TOP]).to(dev)
        left = torch.from_numpy(p[:, ParamsLayout.LEFT]).to(dev)
        flip = torch.from_numpy(p[:, ParamsLayout.FLIP] != 0).to(dev)
    ar_h = torch.arange(h, device=dev)
    ar_w = torch.arange(w, device=dev)
    rows = top[:, None] + ar_h[None, :]  # [B, h]
    cols = left[:, None] + torch.where(flip[:, None], (w - 1 - ar_w)[None, :], ar_w[None, :])
    lin = (rows[:, :, None] * pw + cols[:, None, :]).reshape(b, 1, h * w).expand(b, c, h * w)
    flat = x.reshape(b, c, -1)
    return torch.gather(flat, 2, lin).reshape(b, c, h, w)


def _crop_one(img: torch.Tensor, row: npt.NDArray[np.int64], pad: int) -> torch.Tensor:
    x = F.pad(img, (pad, pad, pad, pad)) if pad else img
    t, left, h, w, flip = (int(v) for v in row)
    out = x[:, t : t + h, left : left + w]
    return out.flip(-1) if flip else out.contiguous()


def _resized_crop_one(
    img: torch.Tensor, row: npt.NDArray[np.int64], size: tuple[int, int], antialias: bool
) -> torch.Tensor:
    t, left, h, w, flip = (int(v) for v in row)
    crop = img[None, :, t : t + h, left : left + w].to(torch.float32)
    aa = antialias
    out = F.interpolate(crop, size=size, mode="bilinear", align_corners=False, antialias=aa)[0]
    if flip:
        out = out.flip(-1)
    return _to_uint8(out)


def replay(
    images: Images,
    params: npt.ArrayLike | torch.Tensor,
    recipe: AugmentRecipe,
    *,
    out_size: tuple[int, int] | None = None,
    on_device: torch.Tensor | None = None,
) -> torch.Tensor:
    """The augmented views uint8 [B, C, h, w] of ``images`` under recorded ``params`` [B, 5].

    ``images`` is a uint8 tensor [B, C, H, W] (any device) or a list of [C, H, W] tensors of
    possibly different sizes. ``out_size`` overrides the recipe's output size for
    ``resized_crop``; for the other kinds it must agree with the params (crop) or the input
    (none). Recipe ``none`` returns a tensor input unchanged (the same object).
    ``on_device``: the same params already on the images' device (a training loop's), used
    by the crop instead of copying ``params`` there; ``params`` (host) are still checked. A
    loop that passes host params and ``on_device`` reads nothing back from the device.
    """
    sizes = _sizes_of(images)
    p = check_params(params, recipe, sizes)
    pad = recipe.pad if recipe.kind == "crop" else 0
    if recipe.kind == "none":
        out = images if isinstance(images, torch.Tensor) else _stack(list(images), recipe)
        if out_size is not None and tuple(out.shape[2:]) != tuple(out_size):
            raise AugmentError(
                f"recipe 'none' cannot resize {list(out.shape[2:])} to {list(out_size)}"
            )
        return out
    if recipe.kind == "crop":
        if out_size is not None and len(p) and np.any(p[:, 2:4] != np.asarray(out_size)):
            raise AugmentError(
                f"crop params size {p[0, 2:4].tolist()} differs from out_size {list(out_size)}"
            )
        if isinstance(images, torch.Tensor):
            if images.shape[0] == 0:
                return images.clone()
            return _crop_batch(images, p, pad, on_device)
        return _stack([_crop_one(img, p[k], pad) for k, img in enumerate(images)], recipe)
    if recipe.kind == "eval":
        return _eval_views(images, recipe, out_size)
    aa = recipe.antialias
    views = [
        _resized_crop_one(img, p[k], _target(recipe, out_size, img), aa)
        for k, img in enumerate(images)
    ]
    if isinstance(images, torch.Tensor) and not views:
        size = _target(recipe, out_size, images)
        return images.new_zeros((0, images.shape[1], *size))
    return _stack(views, recipe)


def _resize_shorter(x: torch.Tensor, short: int) -> torch.Tensor:
    """torchvision ``Resize(short)`` on float [B, C, H, W]: bilinear, antialiased."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    lo, hi = (w, h) if w <= h else (h, w)
    new_short, new_long = short, int(short * hi / lo)
    size = (new_long, new_short) if w <= h else (new_short, new_long)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _center_crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """torchvision ``center_crop`` semantics, including zero padding of too-small inputs."""
    oh, ow = size
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if oh > h or ow > w:
        pl, pt = max(ow - w, 0) // 2, max(oh - h, 0) // 2
        pr, pb = (max(ow - w, 0) + 1) // 2, (max(oh - h, 0) + 1) // 2
        x = F.pad(x, (pl, pr, pt, pb))
        h, w = int(x.shape[-2]), int(x.shape[-1])
    top = round((h - oh) / 2.0)
    left = round((w - ow) / 2.0)
    return x[..., top : top + oh, left : left + ow]


def _imagenet_eval(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    short = round(min(size) * 256 / 224)
    resized = _resize_shorter(x.to(torch.float32), short)
    return _to_uint8(_center_crop(resized, size))


def eval_view(
    images: Images, recipe: AugmentRecipe, *, out_size: tuple[int, int] | None = None
) -> torch.Tensor:
    """The deterministic test-time view uint8 [B, C, h, w].

    Identity for ``none``, ``crop`` recipes (cifar, digits); ``eval``: its view (the
    reference eval transform, :mod:`._eval`); for ``resized_crop`` (imagenet):
    resize the shorter side to ``round(out * 256 / 224)`` (bilinear, antialiased, like
    torchvision's ``Resize``) then centre-crop to the output size.
    """
    _sizes_of(images)
    if recipe.kind == "eval":
        return _eval_views(images, recipe, out_size)
    if recipe.kind != "resized_crop":
        out = images if isinstance(images, torch.Tensor) else _stack(list(images), recipe)
        if out_size is not None and tuple(out.shape[2:]) != tuple(out_size):
            raise AugmentError(
                f"recipe {recipe.name!r} evaluates at the input size {list(out.shape[2:])}, "
                f"not {list(out_size)}"
            )
        return out
    if isinstance(images, torch.Tensor):
        if images.shape[0] == 0:
            return images.new_zeros((0, images.shape[1], *_target(recipe, out_size, images)))
        return _imagenet_eval(images, _target(recipe, out_size, images))
    views = [_imagenet_eval(img[None], _target(recipe, out_size, img))[0] for img in images]
    return _stack(views, recipe)


def _eval_views(
    images: Images, recipe: AugmentRecipe, out_size: tuple[int, int] | None
) -> torch.Tensor:
    """An ``eval`` recipe's views (the same for replay and the test-time view)."""
    size = eval_size(recipe)
    if out_size is not None and tuple(out_size) != size:
        raise AugmentError(f"recipe {recipe.name!r} makes {list(size)} views, not {list(out_size)}")
    if isinstance(images, torch.Tensor) and images.shape[0] == 0:
        return images.new_zeros((0, images.shape[1], *size))
    return _stack([eval_crop(img, recipe) for img in images], recipe)


def normalize(x_uint8: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x / 255 - mean) / std`` as float32 on ``x``'s device; channels at dim -3."""
    if x_uint8.dtype != torch.uint8 or x_uint8.dim() < 3:
        raise AugmentError(
            f"normalize expects uint8 [..., C, H, W], got {x_uint8.dtype} {list(x_uint8.shape)}"
        )
    c = int(x_uint8.shape[-3])
    if len(mean) != c or len(std) != c:
        raise AugmentError(f"mean/std have {len(mean)}/{len(std)} values for {c} channels")
    if min(std) <= 0:
        raise AugmentError(f"std must be positive, got {tuple(std)}")
    dev = x_uint8.device
    m = torch.tensor(list(mean), dtype=torch.float32, device=dev).view(c, 1, 1)
    s = torch.tensor(list(std), dtype=torch.float32, device=dev).view(c, 1, 1)
    return (x_uint8.to(torch.float32) / 255.0 - m) / s
