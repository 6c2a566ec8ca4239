from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn as nn

import sortkd_cache.models as models
from sortkd_cache.errors import ModelError, SortKDError
from sortkd_cache.models import (
    _registry,
    _torchvision,
    create_model,
    list_models,
    model_exists,
    model_info,
    register_model,
)
from sortkd_cache.models.vgg_cifar import CifarVGG

pytestmark = pytest.mark.usefixtures("one_thread")

EXPECTED = {
    "resnet8",
    "resnet14",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "resnet8x4",
    "resnet32x4",
    "wrn_16_1",
    "wrn_16_2",
    "wrn_40_1",
    "wrn_40_2",
    "vgg8",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "digits_mlp",
    "digits_cnn_s",
    "digits_cnn_l",
    "digits100_mlp",
    "digits100_cnn_s",
    "digits100_cnn_l",
}


@pytest.fixture
def scratch_registry() -> Iterator[None]:
    """Registrations made in a test vanish after it."""
    saved = _registry.MODELS.snapshot()
    yield
    _registry.MODELS.restore(saved)


def test_public_api_is_exported() -> None:
    for name in ("create_model", "register_model", "list_models", "model_exists"):
        assert name in models.__all__
        assert callable(getattr(models, name))


def test_list_models_is_sorted_registry_names() -> None:
    names = list_models()
    assert names == sorted(names)
    assert set(names) == EXPECTED
    assert "resnet18" not in names  # torchvision names are accepted, not listed


def test_model_exists() -> None:
    assert model_exists("resnet8x4")
    assert model_exists("digits_cnn_s")
    assert model_exists("resnet18")  # torchvision
    assert model_exists("mobilenet_v3_small")
    assert not model_exists("resnet9")
    assert not model_exists("")
    assert not model_exists(None)  # type: ignore[arg-type]


def test_unknown_model_names_value_and_known_names() -> None:
    with pytest.raises(ModelError) as info:
        create_model("resnet9", num_classes=10)
    message = str(info.value)
    assert "'resnet9'" in message
    assert "\n" not in message
    assert "known: digits100_cnn_l, digits100_cnn_s, digits100_mlp, digits_cnn_l," in message
    for name in EXPECTED:
        assert name in message
    assert "torchvision" in message
    assert isinstance(info.value, SortKDError)
    assert isinstance(info.value, ValueError)


def test_unknown_model_suggests_close_name() -> None:
    with pytest.raises(ModelError, match="did you mean 'wrn_40_2'"):
        create_model("wrn_40-2", num_classes=10)


@pytest.mark.parametrize("bad", [0, -3, True, 2.0, "10", None])
def test_bad_num_classes(bad: object) -> None:
    with pytest.raises(ModelError, match="num_classes"):
        create_model("resnet8", num_classes=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -1, False, 3.0])
def test_bad_in_chans(bad: object) -> None:
    with pytest.raises(ModelError, match="in_chans"):
        create_model("resnet8", num_classes=10, in_chans=bad)  # type: ignore[arg-type]


def test_registry_takes_precedence_over_torchvision() -> None:
    assert "vgg13" in _torchvision.torchvision_model_names()
    model = create_model("vgg13", num_classes=100)
    assert isinstance(model, CifarVGG)
    assert sum(p.numel() for p in model.parameters()) == 9_462_180


def test_torchvision_model_by_name() -> None:
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=7)
    assert model.fc.out_features == 7
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)


def test_torchvision_in_chans_replaces_stem() -> None:
    model = create_model("mobilenet_v3_small", num_classes=5, in_chans=1)
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first.in_channels == 1
    assert first.out_channels == 16
    assert first.stride == (2, 2)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 40, 40)).shape == (2, 5)

    resnet = create_model("resnet18", num_classes=3, in_chans=4)
    assert isinstance(resnet.conv1, nn.Conv2d)
    assert resnet.conv1.in_channels == 4
    assert resnet.conv1.kernel_size == (7, 7)
    assert resnet.conv1.padding == (3, 3)
    assert resnet.conv1.bias is None


def test_torchvision_stem_that_cannot_be_adapted() -> None:
    odd = nn.Sequential(nn.Conv2d(5, 8, 3), nn.Flatten())
    with pytest.raises(ModelError, match="first convolution '0' takes 5 channels"):
        _torchvision._replace_stem(odd, "odd", 1)
    with pytest.raises(ModelError, match="no Conv2d"):
        _torchvision._replace_stem(nn.Linear(3, 3), "lin", 1)


def test_googlenet_returns_plain_logits_in_training_without_warnings() -> None:
    model = create_model("googlenet", num_classes=4)  # filterwarnings=error: no FutureWarning
    model.train()
    out = model(torch.randn(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor)
    assert out.shape == (2, 4)


@pytest.mark.usefixtures("scratch_registry")
def test_register_custom_model() -> None:
    @register_model("tiny_linear", family="test", description="a linear probe")
    def tiny(num_classes: int, in_chans: int) -> nn.Module:
        return nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_chans, num_classes)
        )

    assert "tiny_linear" in list_models()
    assert model_exists("tiny_linear")
    model = create_model("tiny_linear", num_classes=6, in_chans=2)
    assert model(torch.randn(3, 2, 8, 8)).shape == (3, 6)
    info = model_info("tiny_linear")
    assert info.to_dict() == {
        "name": "tiny_linear",
        "family": "test",
        "description": "a linear probe",
    }
    assert info.factory is tiny


@pytest.mark.usefixtures("scratch_registry")
def test_register_duplicate_or_empty_name_refused() -> None:
    with pytest.raises(ModelError, match="'resnet8' is already registered"):

        @register_model("resnet8", family="x", description="y")
        def again(num_classes: int, in_chans: int) -> nn.Module:
            return nn.Identity()

    with pytest.raises(ModelError, match="non-empty"):
        register_model("", family="x", description="y")


@pytest.mark.usefixtures("scratch_registry")
def test_registry_name_shadows_torchvision_name() -> None:
    @register_model("resnet18", family="test", description="shadow")
    def shadow(num_classes: int, in_chans: int) -> nn.Module:
        return nn.Linear(in_chans, num_classes)

    assert isinstance(create_model("resnet18", num_classes=2), nn.Linear)


def test_model_info_families() -> None:
    assert model_info("resnet32x4").family == "resnet_cifar"
    assert model_info("wrn_40_2").family == "wrn"
    assert model_info("vgg8").family == "vgg_cifar"
    assert model_info("digits_cnn_l").family == "digits"
    with pytest.raises(ModelError, match="'resnet18'"):
        model_info("resnet18")  # torchvision models have no registry entry
