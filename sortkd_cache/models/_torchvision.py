"""Fallback to torchvision's classification models (random weights, never downloaded).

``in_chans`` other than 3: the model's first ``nn.Conv2d`` (in registration order, which is
the stem for every torchvision classification model) is replaced by a freshly initialised
convolution with the same output channels, kernel, stride, padding, dilation and bias that
takes ``in_chans`` channels. A model whose first convolution does not take 3 channels, or
is grouped, raises :class:`ModelError` instead.

GoogLeNet and Inception-v3 are built with ``aux_logits=False`` (so they return plain
logits in training mode too) and ``init_weights=True`` (their documented initialisation).
"""

from __future__ import annotations

import functools
from typing import Any

import torch.nn as nn

from sortkd_cache.errors import ModelError

__all__ = ["create_torchvision_model", "torchvision_model_names"]

_EXTRA_KWARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True},
}


@functools.lru_cache(maxsize=1)
def _names() -> tuple[str, ...]:
    import torchvision.models

    return tuple(sorted(torchvision.models.list_models(module=torchvision.models)))


def torchvision_model_names() -> list[str]:
    """torchvision's classification model names, sorted."""
    return list(_names())


def _pair(value: tuple[int, ...]) -> tuple[int, int]:
    return (value[0], value[1])


def _replace_stem(model: nn.Module, name: str, in_chans: int) -> None:
    for path, module in model.named_modules():
        if not isinstance(module, nn.Conv2d):
            continue
        if module.in_channels != 3 or module.groups != 1:
            raise ModelError(
                f"cannot adapt torchvision model {name!r} to in_chans={in_chans}: its first "
                f"convolution {path!r} takes {module.in_channels} channels "
                f"in {module.groups} groups"
            )
        stem = nn.Conv2d(
            in_chans,
            module.out_channels,
            kernel_size=_pair(module.kernel_size),
            stride=_pair(module.stride),
            padding=module.padding if isinstance(module.padding, str) else _pair(module.padding),
            dilation=_pair(module.dilation),
            bias=module.bias is not None,
            padding_mode=module.padding_mode,
        )
        parent_path, _, child = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        setattr(parent, child, stem)
        return
    raise ModelError(f"cannot adapt torchvision model {name!r} to in_chans={in_chans}: no Conv2d")


def create_torchvision_model(name: str, num_classes: int, in_chans: int) -> nn.Module:
    """Build torchvision model ``name`` with ``weights=None`` and ``num_classes`` outputs."""
    if name not in _names():
        raise ModelError(f"unknown torchvision model {name!r}")
    import torchvision.models

    try:
        model: nn.Module = torchvision.models.get_model(
            name, weights=None, num_classes=num_classes, **_EXTRA_KWARGS.get(name, {})
        )
    except (TypeError, ValueError) as exc:
        raise ModelError(f"cannot build torchvision model {name!r}: {exc}") from exc
    if in_chans != 3:
        _replace_stem(model, name, in_chans)
    return model
