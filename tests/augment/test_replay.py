from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from sortkd_cache.augment import (
    NUM_PARAMS,
    PARAM_NAMES,
    RECIPES,
    AugmentRecipe,
    ParamsLayout,
    check_params,
    counter_uniform,
    eval_view,
    get_recipe,
    normalize,
    output_size,
    replay,
    sample_params,
)
from sortkd_cache.errors import AugmentError


def _images(n: int, c: int = 3, h: int = 12, w: int = 10, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=g)


def _ref_crop(img: torch.Tensor, row: np.ndarray, pad: int) -> torch.Tensor:
    """Direct reference: zero-pad, slice, torch.flip."""
    c, h, w = img.shape
    padded = torch.zeros((c, h + 2 * pad, w + 2 * pad), dtype=img.dtype)
    padded[:, pad : pad + h, pad : pad + w] = img
    t, left, ch, cw, flip = (int(v) for v in row)
    out = padded[:, t : t + ch, left : left + cw]
    return torch.flip(out, dims=[-1]) if flip else out


def _ref_rrc_params(
    seed: int, index: int, view: int, height: int, width: int, recipe: AugmentRecipe
) -> tuple[int, int, int, int, int]:
    """torchvision RandomResizedCrop.get_params, line by line, with counter draws."""

    def u(draw: int) -> float:
        return float(counter_uniform(seed, index, view, draw))

    area = height * width
    log_ratio = (math.log(recipe.ratio[0]), math.log(recipe.ratio[1]))
    flip = int(u(40) < 0.5) if recipe.flip else 0
    for t in range(10):
        target_area = area * (recipe.scale[0] + u(4 * t) * (recipe.scale[1] - recipe.scale[0]))
        aspect = math.exp(log_ratio[0] + u(4 * t + 1) * (log_ratio[1] - log_ratio[0]))
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            i = math.floor(u(4 * t + 2) * (height - h + 1))
            j = math.floor(u(4 * t + 3) * (width - w + 1))
            return i, j, h, w, flip
    in_ratio = width / height
    if in_ratio < min(recipe.ratio):
        w = width
        h = round(w / min(recipe.ratio))
    elif in_ratio > max(recipe.ratio):
        h = height
        w = round(h * max(recipe.ratio))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w, flip


def test_constants() -> None:
    assert NUM_PARAMS == 5
    assert PARAM_NAMES == ("top", "left", "height", "width", "flip")
    assert [int(m) for m in ParamsLayout] == [0, 1, 2, 3, 4]
    assert [m.name.lower() for m in ParamsLayout] == list(PARAM_NAMES)
    assert set(RECIPES) == {"none", "cifar", "digits", "imagenet"}


def test_get_recipe_and_errors() -> None:
    cifar = get_recipe("cifar")
    assert (cifar.kind, cifar.pad, cifar.flip, cifar.out_size) == ("crop", 4, True, None)
    digits = get_recipe("digits")
    assert (digits.kind, digits.pad, digits.flip) == ("crop", 1, False)
    big = get_recipe("imagenet:224")
    assert big.name == "imagenet:224"
    assert big.out_size == (224, 224)
    assert big.scale == (0.08, 1.0)
    assert big.ratio == pytest.approx((3 / 4, 4 / 3))
    with pytest.raises(
        AugmentError, match=r"unknown augmentation recipe 'autoaug'; known: .*cifar"
    ):
        get_recipe("autoaug")
    with pytest.raises(AugmentError, match="'x'"):
        get_recipe("imagenet:x")
    with pytest.raises(AugmentError, match="'0'"):
        get_recipe("imagenet:0")


@pytest.mark.parametrize("spec", ["none", "cifar", "digits", "imagenet", "imagenet:64"])
def test_recipe_dict_round_trip(spec: str) -> None:
    recipe = get_recipe(spec)
    assert AugmentRecipe.from_dict(recipe.to_dict()) == recipe


def test_recipe_validation() -> None:
    with pytest.raises(AugmentError, match="'blur'"):
        AugmentRecipe.from_dict({"name": "x", "kind": "blur"})
    with pytest.raises(AugmentError, match="malformed"):
        AugmentRecipe.from_dict({"kind": "crop"})
    with pytest.raises(AugmentError, match="pad"):
        AugmentRecipe(name="x", kind="crop", pad=-1)
    with pytest.raises(AugmentError, match="scale"):
        AugmentRecipe(name="x", kind="resized_crop", scale=(0.5, 0.1))


def test_output_size() -> None:
    assert output_size(get_recipe("cifar"), (32, 32)) == (32, 32)
    assert output_size(get_recipe("imagenet"), (40, 50)) == (40, 50)
    assert output_size(get_recipe("imagenet:24"), (40, 50)) == (24, 24)
    assert output_size(get_recipe("imagenet:24"), None) == (24, 24)
    with pytest.raises(AugmentError, match="variable sizes"):
        output_size(get_recipe("imagenet"), None)


@pytest.mark.parametrize("spec", ["cifar", "digits", "imagenet", "imagenet:8", "none"])
def test_batch_size_and_order_invariance(spec: str) -> None:
    recipe = get_recipe(spec)
    images = _images(100, h=16, w=16, seed=1)
    idx = np.arange(100)
    params = sample_params(recipe, 42, idx, 3, (16, 16))
    assert params.dtype == np.int32
    assert params.shape == (100, NUM_PARAMS)
    whole = replay(images, params, recipe)
    perm = np.random.default_rng(0).permutation(100)
    for start in range(0, 100, 7):
        chunk = perm[start : start + 7]
        p = sample_params(recipe, 42, chunk, 3, np.full((len(chunk), 2), 16))
        np.testing.assert_array_equal(p, params[chunk])
        out = replay(images[torch.from_numpy(chunk)], p, recipe)
        assert torch.equal(out, whole[torch.from_numpy(chunk)])


def test_params_differ_across_views_and_seeds() -> None:
    recipe = get_recipe("cifar")
    idx = np.arange(200)
    base = sample_params(recipe, 0, idx, 0, (32, 32))
    other_view = sample_params(recipe, 0, idx, 1, (32, 32))
    other_seed = sample_params(recipe, 1, idx, 0, (32, 32))
    assert (base != other_view).any(axis=1).mean() > 0.9
    assert (base != other_seed).any(axis=1).mean() > 0.9
    # Different samples of one view are not all the same either.
    assert len({tuple(r) for r in base.tolist()}) > 50


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**63 - 1),
    view=st.integers(0, 1000),
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    spec=st.sampled_from(["cifar", "digits"]),
)
def test_crop_params_in_range_and_replay_matches_reference(
    seed: int, view: int, h: int, w: int, spec: str
) -> None:
    recipe = get_recipe(spec)
    idx = np.arange(0, 60, 3)
    params = sample_params(recipe, seed, idx, view, (h, w))
    p = recipe.pad
    assert (params[:, ParamsLayout.TOP] >= 0).all()
    assert (params[:, ParamsLayout.TOP] <= 2 * p).all()
    assert (params[:, ParamsLayout.LEFT] >= 0).all()
    assert (params[:, ParamsLayout.LEFT] <= 2 * p).all()
    assert (params[:, ParamsLayout.HEIGHT] == h).all()
    assert (params[:, ParamsLayout.WIDTH] == w).all()
    assert set(params[:, ParamsLayout.FLIP].tolist()) <= {0, 1}
    images = _images(len(idx), c=2, h=h, w=w, seed=seed % 1000)
    out = replay(images, params, recipe)
    assert out.dtype == torch.uint8
    assert out.shape == (len(idx), 2, h, w)
    for k in range(len(idx)):
        assert torch.equal(out[k], _ref_crop(images[k], params[k], p))
    # The list path gives the same pixels.
    assert torch.equal(replay(list(images), params, recipe), out)


def test_crop_uses_whole_range_and_flips_half() -> None:
    params = sample_params(get_recipe("cifar"), 5, np.arange(4000), 0, (32, 32))
    assert set(params[:, ParamsLayout.TOP].tolist()) == set(range(9))
    assert set(params[:, ParamsLayout.LEFT].tolist()) == set(range(9))
    assert 0.45 < params[:, ParamsLayout.FLIP].mean() < 0.55


def test_digits_never_flips() -> None:
    recipe = get_recipe("digits")
    for view in range(5):
        params = sample_params(recipe, view, np.arange(2000), view, (8, 8))
        assert (params[:, ParamsLayout.FLIP] == 0).all()
        assert set(params[:, ParamsLayout.TOP].tolist()) == {0, 1, 2}


def test_none_is_identity() -> None:
    recipe = get_recipe("none")
    images = _images(6, h=7, w=9)
    params = sample_params(recipe, 3, np.arange(6), 2, (7, 9))
    np.testing.assert_array_equal(params, np.tile([0, 0, 7, 9, 0], (6, 1)))
    assert torch.equal(replay(images, params, recipe), images)
    assert torch.equal(replay(list(images), params, recipe), images)
    assert torch.equal(eval_view(images, recipe), images)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    h=st.integers(1, 300),
    w=st.integers(1, 300),
)
def test_imagenet_params_follow_torchvision_algorithm(seed: int, h: int, w: int) -> None:
    recipe = get_recipe("imagenet")
    idx = np.array([0, 1, 7, 1000])
    params = sample_params(recipe, seed, idx, 4, (h, w))
    for k, i in enumerate(idx):
        assert tuple(params[k].tolist()) == _ref_rrc_params(seed, int(i), 4, h, w, recipe)
    top, left = params[:, ParamsLayout.TOP], params[:, ParamsLayout.LEFT]
    ch, cw = params[:, ParamsLayout.HEIGHT], params[:, ParamsLayout.WIDTH]
    assert ((top >= 0) & (left >= 0) & (ch >= 1) & (cw >= 1)).all()
    assert ((top + ch <= h) & (left + cw <= w)).all()


def test_imagenet_params_obey_scale_and_ratio() -> None:
    recipe = get_recipe("imagenet")
    h = w = 224
    params = sample_params(recipe, 9, np.arange(5000), 0, (h, w)).astype(np.float64)
    ch, cw = params[:, ParamsLayout.HEIGHT], params[:, ParamsLayout.WIDTH]
    area = ch * cw / (h * w)
    ratio = cw / ch
    # Rounding w and h to integers moves area and ratio a little past the bounds.
    assert area.min() >= 0.08 * 0.95
    assert area.max() <= 1.0
    assert ratio.min() >= 0.75 * 0.98
    assert ratio.max() <= (4 / 3) * 1.02
    assert area.max() > 0.9
    assert area.min() < 0.1
    assert 0.45 < params[:, ParamsLayout.FLIP].mean() < 0.55


def test_imagenet_fallback_is_centre_crop() -> None:
    # A 1x50 strip: no try fits the ratio bounds, so the fallback crops the centre.
    recipe = get_recipe("imagenet")
    params = sample_params(recipe, 0, np.arange(50), 0, (1, 50))
    assert (params[:, :4] == np.array([0, 24, 1, 1])).all()


def test_imagenet_replay_matches_reference_and_torchvision() -> None:
    """Version 1 (what stores made before recipe versions recorded): not antialiased."""
    tvf = pytest.importorskip("torchvision.transforms.v2.functional")
    recipe = get_recipe("imagenet:16", version=1)
    images = _images(12, h=30, w=40, seed=3)
    params = sample_params(recipe, 1, np.arange(12), 0, (30, 40))
    out = replay(images, params, recipe)
    assert out.shape == (12, 3, 16, 16)
    for k in range(12):
        t, left, h, w, flip = (int(v) for v in params[k])
        crop = images[k, :, t : t + h, left : left + w].float()[None]
        ref = F.interpolate(crop, size=(16, 16), mode="bilinear", align_corners=False)[0]
        ref = ref.flip(-1) if flip else ref
        assert torch.equal(out[k], ref.round().clamp(0, 255).to(torch.uint8))
        tv = tvf.resized_crop(images[k].float(), t, left, h, w, [16, 16], antialias=False)
        tv = tv.flip(-1) if flip else tv
        assert torch.equal(out[k], tv.round().clamp(0, 255).to(torch.uint8))
    # Variable-size list input with an explicit output size.
    imgs = [_images(1, h=20 + k, w=30 - k, seed=k)[0] for k in range(5)]
    sizes = np.array([im.shape[1:] for im in imgs])
    p = sample_params(get_recipe("imagenet"), 1, np.arange(5), 0, sizes)
    views = replay(imgs, p, get_recipe("imagenet"), out_size=(12, 12))
    assert views.shape == (5, 3, 12, 12)
    with pytest.raises(AugmentError, match="different sizes"):
        replay(imgs, p, get_recipe("imagenet"))


def test_version_2_resized_crop_is_torchvisions_antialiased_one() -> None:
    """New recipes (version 2): each view is torchvision's ``resized_crop`` with
    ``antialias=True``, as its ``RandomResizedCrop`` does (on float, then rounded)."""
    tvf = pytest.importorskip("torchvision.transforms.v2.functional")
    recipe = get_recipe("imagenet:16")
    assert recipe.version == 2 and recipe.to_dict()["version"] == 2
    assert "version" not in get_recipe("imagenet:16", version=1).to_dict()  # old records
    assert AugmentRecipe.from_dict(get_recipe("imagenet:16", version=1).to_dict()).version == 1
    images = _images(12, h=30, w=40, seed=3)
    params = sample_params(recipe, 1, np.arange(12), 0, (30, 40))
    assert np.array_equal(
        params, sample_params(get_recipe("imagenet:16", 1), 1, np.arange(12), 0, (30, 40))
    )
    out = replay(images, params, recipe)
    old = replay(images, params, get_recipe("imagenet:16", version=1))
    assert not torch.equal(out, old)  # downscaled crops differ
    for k in range(12):
        t, left, h, w, flip = (int(v) for v in params[k])
        tv = tvf.resized_crop(images[k].float(), t, left, h, w, [16, 16], antialias=True)
        tv = tv.flip(-1) if flip else tv
        assert torch.equal(out[k], tv.round().clamp(0, 255).to(torch.uint8))


def test_eval_view() -> None:
    images = _images(4, h=32, w=32)
    assert torch.equal(eval_view(images, get_recipe("cifar")), images)
    out = eval_view(images, get_recipe("imagenet:16"))
    assert out.shape == (4, 3, 16, 16)
    # resize shorter side to round(16 * 256 / 224) = 18, then centre crop 16.
    ref = F.interpolate(images.float(), size=(18, 18), mode="bilinear", antialias=True)
    ref = ref[:, :, 1:17, 1:17].round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(out, ref)
    same = eval_view(images, get_recipe("imagenet"))
    assert same.shape == (4, 3, 32, 32)
    listed = eval_view([images[0], _images(1, h=50, w=20)[0]], get_recipe("imagenet:16"))
    assert listed.shape == (2, 3, 16, 16)
    assert torch.equal(listed[0], out[0])


def test_normalize() -> None:
    x = torch.tensor([[[[0, 255]], [[51, 102]]]], dtype=torch.uint8)  # [1, 2, 1, 2]
    y = normalize(x, (0.5, 0.2), (0.5, 0.1))
    assert y.dtype == torch.float32
    expected = torch.tensor([[[[-1.0, 1.0]], [[0.0, 2.0]]]])
    torch.testing.assert_close(y, expected)
    with pytest.raises(AugmentError, match="3 channels"):
        normalize(_images(1), (0.5,), (0.5,))
    with pytest.raises(AugmentError, match="uint8"):
        normalize(x.float(), (0.5, 0.5), (0.5, 0.5))


def test_bad_params_raise() -> None:
    recipe = get_recipe("cifar")
    images = _images(2, h=8, w=8)
    good = sample_params(recipe, 0, np.arange(2), 0, (8, 8))
    with pytest.raises(AugmentError, match=r"shape \[2, 5\]"):
        replay(images, good[:1], recipe)
    bad = good.copy()
    bad[1, ParamsLayout.TOP] = 9  # 9 + 8 > 8 + 2 * 4
    with pytest.raises(AugmentError, match="params row 1"):
        replay(images, bad, recipe)
    bad = good.copy()
    bad[0, ParamsLayout.FLIP] = 2
    with pytest.raises(AugmentError, match="params row 0"):
        check_params(bad, recipe, np.array([[8, 8], [8, 8]]))
    with pytest.raises(AugmentError, match="uint8"):
        replay(images.float(), good, recipe)
    with pytest.raises(AugmentError, match="image_sizes"):
        sample_params(recipe, 0, np.arange(3), 0, np.ones((2, 2)))


def test_replay_keeps_device_and_handles_empty() -> None:
    recipe = get_recipe("cifar")
    empty = replay(_images(0), np.zeros((0, 5), dtype=np.int32), recipe)
    assert empty.shape == (0, 3, 12, 10)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    images = _images(8).to(device)
    params = sample_params(recipe, 0, np.arange(8), 0, (12, 10))
    out = replay(images, params, recipe)
    assert out.device == images.device
    assert torch.equal(out.cpu(), replay(images.cpu(), params, recipe))


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear", "bicubic"])
@pytest.mark.parametrize(("size", "crop_pct"), [(16, 0.9), (9, 0.875), (20, 1.0)])
@pytest.mark.parametrize(("h", "w"), [(30, 41), (41, 30), (25, 25)])
def test_eval_views_are_torchvisions_pil_resize_and_centre_crop(
    interpolation: str, size: int, crop_pct: float, h: int, w: int
) -> None:
    """``eval:SIZE``: ``Resize(floor(SIZE / crop_pct))`` then ``CenterCrop(SIZE)`` on the PIL
    image, as timm's and torchvision's eval transforms do: landscape, portrait, square."""
    from dataclasses import replace

    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as tf

    recipe = replace(get_recipe(f"eval:{size}"), crop_pct=crop_pct, interpolation=interpolation)
    images = _images(3, h=h, w=w, seed=size)
    params = sample_params(recipe, 0, np.arange(3), 0, (h, w))
    assert (params == np.array([0, 0, h, w, 0])).all()
    out = replay(images, params, recipe)
    assert torch.equal(eval_view(images, recipe), out)
    mode = InterpolationMode(interpolation)
    for k in range(3):
        pil = Image.fromarray(images[k].permute(1, 2, 0).numpy())
        pil = tf.center_crop(tf.resize(pil, math.floor(size / crop_pct), mode), [size, size])
        assert torch.equal(out[k], torch.from_numpy(np.array(pil)).permute(2, 0, 1))
