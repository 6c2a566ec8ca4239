"""Model architectures by name: CIFAR ResNets, WideResNets and VGGs (CRD / mdistiller),
small models for the 8x8 ``digits`` data, any torchvision classification model and any timm
model (``timm:NAME``, optional extra), with pretrained weights from the local caches.

>>> from sortkd_cache.models import create_model
>>> model = create_model("resnet8x4", num_classes=100)
"""

from __future__ import annotations

# Imported for their registrations.
from sortkd_cache.models import resnet_cifar, small, vgg_cifar, wrn  # noqa: F401
from sortkd_cache.models._preprocess import (
    INTERPOLATIONS,
    TeacherPreprocess,
    parse_floats,
    parse_size,
)
from sortkd_cache.models._pretrained import create_pretrained, is_offline, native_preprocess
from sortkd_cache.models._registry import (
    MODELS,
    ModelFactory,
    ModelInfo,
    check_architecture,
    create_model,
    list_models,
    model_exists,
    model_info,
    register_model,
)

__all__ = [
    "INTERPOLATIONS",
    "MODELS",
    "ModelFactory",
    "ModelInfo",
    "TeacherPreprocess",
    "check_architecture",
    "create_model",
    "create_pretrained",
    "is_offline",
    "list_models",
    "model_exists",
    "model_info",
    "native_preprocess",
    "parse_floats",
    "parse_size",
    "register_model",
]
