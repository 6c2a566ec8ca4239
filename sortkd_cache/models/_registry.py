"""Building models by name, timm style: :func:`create_model`.

The registry (:data:`MODELS`, :func:`register_model`) lives in the torch-free
:mod:`sortkd_cache.models._catalog`, which declares this package's architectures;
:func:`create_model` builds one by name. Names not in the registry fall back to
torchvision's classification models (``resnet18``, ``mobilenet_v3_small``, ...), built
with random weights; ``timm:NAME`` builds a timm model (optional dependency);
``module:callable`` calls a user's own factory (:mod:`sortkd_cache.models._user`), and other
packages register theirs in the ``sortkd_cache.models`` entry-point group. Pretrained
weights: :mod:`sortkd_cache.models._pretrained`. Registry names take precedence over
torchvision names
(``vgg13`` is the CIFAR VGG-13 of CRD, not torchvision's ImageNet VGG-13).
"""

from __future__ import annotations

import torch.nn as nn

from sortkd_cache.errors import ModelError
from sortkd_cache.models._catalog import MODELS, ModelFactory, ModelInfo, register_model
from sortkd_cache.models._timm import create_timm_model, is_timm_name, timm_name_exists
from sortkd_cache.models._torchvision import create_torchvision_model, torchvision_model_names
from sortkd_cache.models._user import call_user_model, is_user_name, resolve_user_model

__all__ = [
    "MODELS",
    "ModelFactory",
    "ModelInfo",
    "check_architecture",
    "create_model",
    "list_models",
    "model_exists",
    "model_info",
    "register_model",
]


def list_models() -> list[str]:
    """The registry's architecture names, sorted.

    Any torchvision classification model name (``torchvision.models.list_models``) is also
    accepted by :func:`create_model`, but is not listed here.
    """
    return MODELS.names()


def model_exists(name: str) -> bool:
    """Whether :func:`create_model` knows ``name`` (registry, torchvision, ``timm:`` or
    ``module:callable``; a ``timm:`` name imports timm, and is unknown where timm is not
    installed; a ``module:callable`` name imports its module)."""
    if is_timm_name(name):
        return timm_name_exists(name)
    if name in MODELS or (isinstance(name, str) and name in torchvision_model_names()):
        return True
    if is_user_name(name):
        try:
            resolve_user_model(name)
        except ModelError:
            return False
        return True
    return False


def check_architecture(name: str) -> None:
    """Nothing if :func:`create_model` knows ``name``, else one :class:`ModelError` line: a
    ``module:callable`` name says what is wrong (module, attribute, signature)."""
    if is_user_name(name) and name not in MODELS:
        resolve_user_model(name)
    elif not model_exists(name):
        raise ModelError(_unknown_message(name))


def model_info(name: str) -> ModelInfo:
    """The registry entry for ``name``; :class:`ModelError` for anything else."""
    if name not in MODELS:
        raise ModelError(_unknown_message(name))
    return MODELS.get(name)


def _check_positive_int(what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(f"{what} must be a positive integer, got {value!r}")
    return value


def _unknown_message(name: object) -> str:
    return MODELS.unknown_message(name, list_models() + torchvision_model_names())


def create_model(name: str, num_classes: int, in_chans: int = 3) -> nn.Module:
    """Build architecture ``name`` with random (seeded) weights.

    The registry is searched first (this package's names, then the installed plugins'), then
    ``timm:NAME`` (timm's own initialisation, nothing downloaded), then ``module:callable``
    (called as ``callable(num_classes=..., in_chans=...)``), then torchvision's
    classification models, which are
    built with ``weights=None`` (nothing is downloaded); see
    :func:`sortkd_cache.models._torchvision.create_torchvision_model` for how ``in_chans``
    other than 3 is handled there. Every model returns logits of shape ``[B, num_classes]``.

    Raises :class:`ModelError` for an unknown name or a non-positive ``num_classes`` /
    ``in_chans``.
    """
    num_classes = _check_positive_int("num_classes", num_classes)
    in_chans = _check_positive_int("in_chans", in_chans)
    if name in MODELS:
        return MODELS.get(name).factory(num_classes, in_chans)
    if is_timm_name(name):
        return create_timm_model(name, num_classes, in_chans)
    if is_user_name(name):
        return call_user_model(resolve_user_model(name), repr(name), num_classes, in_chans)
    if isinstance(name, str) and name in torchvision_model_names():
        return create_torchvision_model(name, num_classes, in_chans)
    raise ModelError(_unknown_message(name))
