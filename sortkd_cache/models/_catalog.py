"""The model registry's entries, described without torch: name, family, one line, and a lazy
factory.

Each architecture of this package is declared here by name with its family and description;
its factory is a :class:`~sortkd_cache._registry.Lazy` naming the function in the module that
defines it (``sortkd_cache.models.small:digits_mlp``), imported only when a model is built.
``sortkd-cache list models`` reads this registry without importing torch. Other packages'
architectures come from the ``sortkd_cache.models`` entry points (named from their metadata,
loaded on first use); :func:`register_model` registers a factory of your own directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sortkd_cache._registry import Lazy, Registry
from sortkd_cache.errors import ModelError

if TYPE_CHECKING:
    import torch.nn as nn

__all__ = ["MODELS", "ModelFactory", "ModelInfo", "register_model"]

ModelFactory = Callable[[int, int], "nn.Module"]
"""A factory ``(num_classes, in_chans) -> nn.Module``."""


@dataclass(frozen=True)
class ModelInfo:
    """One registry entry (``factory`` may be :class:`Lazy`: imported when first called)."""

    name: str
    family: str
    description: str
    factory: ModelFactory

    def to_dict(self) -> dict[str, str]:
        """The entry without its factory (JSON friendly)."""
        return {"name": self.name, "family": self.family, "description": self.description}


def _from_package(name: str, loaded: object, package: str) -> ModelInfo:
    """A ``sortkd_cache.models`` entry point: a :class:`ModelInfo` named ``name``, or a
    callable taking ``num_classes=`` and ``in_chans=`` (the family is its package)."""
    if isinstance(loaded, ModelInfo):
        if loaded.name != name:
            raise ModelError(f"model entry point {name!r} of {package!r} is named {loaded.name!r}")
        return loaded
    doc = (getattr(loaded, "__doc__", None) or "").strip().splitlines()
    adapt = Lazy[[str, object, str], ModelFactory](
        "sortkd_cache.models._user:model_from_entry_point"
    )
    factory = adapt(name, loaded, package)
    return ModelInfo(name, package, doc[0] if doc else f"from package {package}", factory)


#: The architectures of this package and of installed plugins (``sortkd_cache.models`` entry
#: points), by name (torchvision's are looked up separately).
MODELS: Registry[ModelInfo] = Registry(
    "model",
    error=ModelError,
    extra="(plus any torchvision classification model, e.g. resnet18, timm:NAME and "
    "module:callable)",
    group="sortkd_cache.models",
    adapt=_from_package,
)


def register_model(
    name: str, *, family: str, description: str
) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: register ``factory(num_classes, in_chans) -> nn.Module`` under ``name``.

    Raises :class:`ModelError` if ``name`` is empty or already registered.
    """
    MODELS.check_name(name)

    def decorator(factory: ModelFactory) -> ModelFactory:
        MODELS.add(name, ModelInfo(name, family, description, factory))
        return factory

    return decorator


def _declare(module: str, family: str, entries: Iterable[tuple[str, str]]) -> None:
    """This package's architectures of one module: ``(name, description)`` each, built by the
    module's function of the same name."""
    for name, description in entries:
        factory = Lazy[[int, int], "nn.Module"](f"sortkd_cache.models.{module}:{name}")
        MODELS.add(name, ModelInfo(name, family, description, factory))


_RESNET_DEPTHS = (8, 14, 20, 32, 44, 56, 110)
_declare("resnet_cifar", "resnet_cifar", [
    *((f"resnet{d}", f"CIFAR ResNet-{d} (CRD), widths 16-16-32-64") for d in _RESNET_DEPTHS),
    ("resnet8x4", "CIFAR ResNet-8x4 (CRD), widths 32-64-128-256"),
    ("resnet32x4", "CIFAR ResNet-32x4 (CRD), widths 32-64-128-256"),
])  # fmt: skip
_declare("wrn", "wrn", (
    (f"wrn_{depth}_{widen}", f"WideResNet-{depth}-{widen} (CRD)")
    for depth, widen in ((16, 1), (16, 2), (40, 1), (40, 2))
))  # fmt: skip
_declare("vgg_cifar", "vgg_cifar", (
    (f"vgg{depth}", f"CIFAR VGG-{depth} with BN (CRD)") for depth in (8, 11, 13, 16, 19)
))  # fmt: skip
_declare("small", "digits", [
    ("digits_mlp", "MLP 64-128-C for 8x8 digits"),
    ("digits_cnn_s", "student CNN 16-32 | 48 for 8x8 digits"),
    ("digits_cnn_l", "teacher CNN 32-64 | 128-96 for 8x8 digits"),
    ("digits100_mlp", "MLP 128-128-C for 8x16 digits100"),
    ("digits100_cnn_s", "student CNN 16-32 | 48, 1x2 pool, for 8x16"),
    ("digits100_cnn_l", "teacher CNN 32-64 | 128-96, 1x2 pool, for 8x16"),
])  # fmt: skip
