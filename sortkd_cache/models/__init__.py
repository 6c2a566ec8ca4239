"""Model architectures by name: CIFAR ResNets, WideResNets and VGGs (CRD / mdistiller),
small models for the 8x8 ``digits`` data, any torchvision classification model and any timm
model (``timm:NAME``, optional extra), with pretrained weights from the local caches.

>>> from sortkd_cache.models import create_model
>>> model = create_model("resnet8x4", num_classes=100)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sortkd_cache._registry import lazy_names
from sortkd_cache.models._catalog import MODELS, ModelFactory, ModelInfo, register_model
from sortkd_cache.models._preprocess import (
    INTERPOLATIONS,
    TeacherPreprocess,
    parse_floats,
    parse_size,
)

if TYPE_CHECKING:
    from sortkd_cache.models._forward import teacher_logits
    from sortkd_cache.models._pretrained import create_pretrained, is_offline, native_preprocess
    from sortkd_cache.models._registry import (
        check_architecture,
        create_model,
        list_models,
        model_exists,
        model_info,
    )

#: The registry (names, families, descriptions: ``list``) and the preprocessing record
#: (``info``) read without torch; the names that build models (torch, torchvision) load on
#: first use. An architecture's own module is imported when that model is first built.
__getattr__ = lazy_names(
    __name__,
    {
        "teacher_logits": "_forward",
        **dict.fromkeys(("create_pretrained", "is_offline", "native_preprocess"), "_pretrained"),
        **dict.fromkeys(
            ("check_architecture", "create_model", "list_models", "model_exists", "model_info"),
            "_registry",
        ),
    },
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
    "teacher_logits",
]
