from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from sortkd_cache.models import create_model, list_models

pytestmark = pytest.mark.usefixtures("one_thread")

# Published parameter counts (millions, 100 classes) from CRD / mdistiller.
PUBLISHED_M = {
    "resnet8x4": 1.23,
    "resnet32x4": 7.43,
    "resnet56": 0.86,
    "resnet20": 0.28,
    "resnet110": 1.74,
    "resnet32": 0.47,
    "wrn_40_2": 2.26,
    "wrn_16_2": 0.70,
    "wrn_40_1": 0.57,
    "vgg13": 9.46,
    "vgg8": 3.96,
}

# Exact counts for 100 classes, 3 input channels (those of CRD's definitions).
EXACT_100 = {
    "resnet8": 83_892,
    "resnet14": 181_108,
    "resnet20": 278_324,
    "resnet32": 472_756,
    "resnet44": 667_188,
    "resnet56": 861_620,
    "resnet110": 1_736_564,
    "resnet8x4": 1_233_540,
    "resnet32x4": 7_433_860,
    "wrn_16_1": 180_916,
    "wrn_16_2": 703_284,
    "wrn_40_1": 569_780,
    "wrn_40_2": 2_255_156,
    "vgg8": 3_965_028,
    "vgg11": 9_277_284,
    "vgg13": 9_462_180,
    "vgg16": 14_774_436,
    "vgg19": 20_086_692,
}

CIFAR_MODELS = sorted(EXACT_100)
DIGITS_MODELS = [
    "digits_mlp",
    "digits_cnn_s",
    "digits_cnn_l",
    "digits100_mlp",
    "digits100_cnn_s",
    "digits100_cnn_l",
]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_registered_model_is_covered() -> None:
    assert set(list_models()) == set(CIFAR_MODELS) | set(DIGITS_MODELS)


@pytest.mark.parametrize("name", sorted(PUBLISHED_M))
def test_param_count_matches_published(name: str) -> None:
    count = n_params(create_model(name, num_classes=100))
    assert abs(count / 1e6 - PUBLISHED_M[name]) <= 0.02 * PUBLISHED_M[name]


@pytest.mark.parametrize("name", CIFAR_MODELS)
def test_param_count_exact(name: str) -> None:
    assert n_params(create_model(name, num_classes=100)) == EXACT_100[name]


def test_param_count_follows_num_classes_and_in_chans() -> None:
    base = n_params(create_model("resnet8x4", num_classes=100))
    # fc: 256 inputs + bias per extra class; stem: 32 filters of 3x3 per extra channel
    assert n_params(create_model("resnet8x4", num_classes=10)) == base - 90 * 257
    assert n_params(create_model("resnet8x4", num_classes=100, in_chans=1)) == base - 2 * 32 * 9


@pytest.mark.parametrize("name", CIFAR_MODELS + DIGITS_MODELS)
def test_output_shape_for_any_input_size(name: str) -> None:
    torch.manual_seed(0)
    for in_chans in (3, 1):
        model = create_model(name, num_classes=7, in_chans=in_chans).eval()
        with torch.no_grad():
            for size in ((8, 8), (32, 32), (11, 20)):
                out = model(torch.randn(2, in_chans, *size))
                assert out.shape == (2, 7)
                assert torch.isfinite(out).all()
    # training mode: BatchNorm on the 1x1 maps of an 8x8 input, gradients reach the stem
    model.train()
    model(torch.randn(2, 1, 8, 8)).sum().backward()
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear))
    assert first.weight.grad is not None
    assert torch.isfinite(first.weight.grad).all()


@pytest.mark.parametrize("name", ["resnet8", "wrn_16_1", "vgg8", "digits_cnn_s", "digits_mlp"])
def test_larger_inputs(name: str) -> None:
    model = create_model(name, num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3)
        assert model(torch.randn(1, 3, 9, 70)).shape == (1, 3)


@settings(max_examples=20, deadline=None)
@given(
    name=st.sampled_from(["resnet8", "wrn_16_1", "vgg8", "digits_cnn_s", "digits_mlp"]),
    height=st.integers(8, 40),
    width=st.integers(8, 40),
    in_chans=st.integers(1, 4),
)
def test_any_size_property(name: str, height: int, width: int, in_chans: int) -> None:
    model = create_model(name, num_classes=4, in_chans=in_chans).eval()
    with torch.no_grad():
        out = model(torch.randn(2, in_chans, height, width))
    assert out.shape == (2, 4)


@pytest.mark.parametrize("name", CIFAR_MODELS + DIGITS_MODELS)
def test_deterministic_given_seed(name: str) -> None:
    torch.manual_seed(123)
    a = create_model(name, num_classes=10).state_dict()
    torch.manual_seed(123)
    b = create_model(name, num_classes=10).state_dict()
    torch.manual_seed(124)
    c = create_model(name, num_classes=10).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


def test_crd_state_dict_names() -> None:
    """Parameter names follow CRD's definitions, so CRD / mdistiller checkpoints load."""
    keys = create_model("resnet8x4", num_classes=100).state_dict().keys()
    assert {
        "conv1.weight",
        "bn1.running_mean",
        "layer1.0.conv1.weight",
        "layer1.0.downsample.0.weight",
        "layer3.0.bn2.num_batches_tracked",
        "fc.weight",
        "fc.bias",
    } <= keys
    assert "layer1.0.downsample.0.weight" in keys  # 32 -> 64 in layer1 of the x4 variant
    assert "layer1.0.downsample.0.weight" not in create_model("resnet20", 10).state_dict()

    wrn = create_model("wrn_40_2", num_classes=100).state_dict().keys()
    assert {
        "conv1.weight",
        "block1.layer.0.bn1.weight",
        "block1.layer.0.convShortcut.weight",
        "block3.layer.5.conv2.weight",
        "bn1.weight",
        "fc.weight",
    } <= wrn
    assert "block1.layer.0.convShortcut.weight" not in create_model("wrn_16_1", 10).state_dict()

    vgg = create_model("vgg13", num_classes=100).state_dict().keys()
    assert {
        "block0.0.weight",
        "block0.1.running_var",
        "block0.3.weight",
        "classifier.weight",
    } <= vgg
    assert "block0.5.weight" not in vgg  # the block's trailing ReLU is not a module


def _block4_input_size(model: nn.Module, size: tuple[int, int]) -> tuple[int, int]:
    seen: list[tuple[int, int]] = []

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        seen.append((args[0].shape[-2], args[0].shape[-1]))

    handle = model.block4.register_forward_pre_hook(hook)
    with torch.no_grad():
        model(torch.randn(1, 3, *size))
    handle.remove()
    return seen[0]


def test_vgg_pooling_schedule() -> None:
    model = create_model("vgg8", num_classes=10).eval()
    assert _block4_input_size(model, (32, 32)) == (4, 4)  # CRD: three pools on CIFAR
    assert _block4_input_size(model, (64, 64)) == (4, 4)  # CRD: four pools on 64 px
    assert _block4_input_size(model, (8, 8)) == (1, 1)  # three pools down to 1 px
    assert _block4_input_size(model, (8, 20)) == (1, 2)  # pools skipped once at 1 px high


def test_digits_model_sizes() -> None:
    assert 5_000 <= n_params(create_model("digits_mlp", num_classes=10, in_chans=1)) <= 30_000
    assert 10_000 <= n_params(create_model("digits_cnn_s", num_classes=10, in_chans=1)) <= 30_000
    assert 100_000 <= n_params(create_model("digits_cnn_l", num_classes=10, in_chans=1)) <= 300_000
    sizes = {name: n_params(create_model(name, 100, 1)) for name in DIGITS_MODELS[3:]}
    assert sizes == {"digits100_mlp": 29_412, "digits100_cnn_s": 28_468, "digits100_cnn_l": 222_980}


def test_digits100_models_tell_left_from_right() -> None:
    """The 1x2 pool (CNNs) and the 8x16 input (MLP) keep where a digit is: ``17`` != ``71``."""
    x = torch.zeros(1, 1, 8, 16)
    x[..., :8] = torch.rand(8, 8)
    swapped = torch.cat([x[..., 8:], x[..., :8]], dim=-1)
    for name in DIGITS_MODELS[3:]:
        torch.manual_seed(0)
        model = create_model(name, 10, 1).eval()
        with torch.no_grad():
            assert not torch.allclose(model(x), model(swapped))


@pytest.mark.parametrize("name", ["digits_mlp", "digits_cnn_s"])
def test_digits_students_learn_over_epochs(name: str) -> None:
    """Epochs of plain SGD lower the training loss (speed is bench_train's, not a test's)."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_chans=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = torch.randn(512, 1, 8, 8)
    y = (x.flatten(1) @ torch.randn(64, 10)).argmax(1)  # labels a model can learn

    def epoch() -> float:
        total = torch.zeros(())
        for i in range(0, len(x), 64):
            loss = F.cross_entropy(model(x[i : i + 64]), y[i : i + 64])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.detach()
        return float(total)

    losses = [epoch() for _ in range(8)]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.9 * losses[0]


def test_digits_teacher_can_fit_a_batch() -> None:
    torch.manual_seed(0)
    model = create_model("digits_cnn_l", num_classes=10, in_chans=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(32, 1, 8, 8)
    y = torch.arange(32) % 10
    for _ in range(60):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.9
