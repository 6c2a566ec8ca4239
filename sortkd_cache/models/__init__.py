"""Model architectures by name: CIFAR ResNets, WideResNets and VGGs (CRD / mdistiller),
small models for the 8x8 ``digits`` data, any torchvision classification model and any timm
model (``timm:NAME``, optional extra), with pretrained weights from the local caches.

>>> from sortkd_cache.models import create_model
>>> model = create_model("resnet8x4", num_classes=100)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sortkd_cache.models._preprocess import (
    INTERPOLATIONS,
    TeacherPreprocess,
    parse_floats,
    parse_size,
)

if TYPE_CHECKING:
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

#: The preprocessing record above reads without torch (``info``); every other name loads the
#: architectures (torch) on first use, registering them before the registry is handed out.
_LAZY = {
    **dict.fromkeys(("create_pretrained", "is_offline", "native_preprocess"), "_pretrained"),
    **dict.fromkeys(
        ("MODELS", "ModelFactory", "ModelInfo", "check_architecture", "create_model",
         "list_models", "model_exists", "model_info", "register_model"),
        "_registry",
    ),
}  # fmt: skip
_ARCHITECTURES = ("resnet_cifar", "small", "vgg_cifar", "wrn")


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'sortkd_cache.models' has no attribute '{name}'")
    for arch in _ARCHITECTURES:  # imported for their registrations
        importlib.import_module(f"sortkd_cache.models.{arch}")
    value = getattr(importlib.import_module(f"sortkd_cache.models.{where}"), name)
    globals()[name] = value
    return value


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
