"""Your own architectures: ``module:callable`` names, and models other packages register.

An architecture name ``pkg.mod:fn`` (``--student``, ``--teacher``, a recipe's ``arch``) imports
``pkg.mod`` from the user's environment and calls ``fn`` as

    fn(num_classes=C, in_chans=K)

with keyword arguments (the dataset's class count and image channels), which must return a
``torch.nn.Module`` mapping ``[B, K, H, W]`` images to ``[B, C]`` logits. ``fn`` may be a
dotted path inside the module (``pkg.mod:Zoo.tiny``) and any callable (a function, a class).
A callable registered in the ``sortkd_cache.models`` entry-point group is called the same way.

A missing module, a missing attribute, something that is not callable or cannot be called with
those two keyword arguments, and a call that returns no ``nn.Module`` each raise one
:class:`ModelError` line (exit 2). An exception raised inside ``fn`` itself is the user code's
failure and propagates unchanged.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable

import torch.nn as nn

from sortkd_cache.errors import ModelError

__all__ = ["call_user_model", "is_user_name", "model_from_entry_point", "resolve_user_model"]

_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_USER_NAME = re.compile(rf"({_DOTTED}):({_DOTTED})")


def is_user_name(name: object) -> bool:
    """Whether ``name`` reads as ``module:callable`` (``timm:NAME`` is timm's, not a module)."""
    return (
        isinstance(name, str)
        and not name.startswith("timm:")
        and _USER_NAME.fullmatch(name) is not None
    )


def resolve_user_model(name: str) -> Callable[..., object]:
    """The callable ``name`` (``module:callable``) names, checked to take the two keywords."""
    match = _USER_NAME.fullmatch(name)
    if match is None or name.startswith("timm:"):
        raise ModelError(f"architecture {name!r} is not of the form module:callable")
    module_name, attr = match.groups()
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(
            f"architecture {name!r}: cannot import module {module_name!r} ({exc})"
        ) from None
    found: object = module
    for part in attr.split("."):
        if not hasattr(found, part):
            raise ModelError(f"architecture {name!r}: module {module_name!r} has no {attr!r}")
        found = getattr(found, part)
    return checked_callable(found, repr(name))


def checked_callable(found: object, label: str) -> Callable[..., object]:
    """``found`` if it can be called as ``found(num_classes=..., in_chans=...)``."""
    if not callable(found):
        raise ModelError(f"architecture {label} is a {type(found).__name__}, not a callable")
    try:
        inspect.signature(found).bind(num_classes=1, in_chans=1)
    except TypeError as exc:
        raise ModelError(
            f"architecture {label} cannot be called as fn(num_classes=C, in_chans=K): {exc}"
        ) from None
    except ValueError:  # no signature to inspect (a builtin): the call itself will tell
        pass
    return found


def call_user_model(
    fn: Callable[..., object], label: str, num_classes: int, in_chans: int
) -> nn.Module:
    """``fn(num_classes=..., in_chans=...)``, refused unless it returns an ``nn.Module``."""
    model = fn(num_classes=num_classes, in_chans=in_chans)
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"architecture {label} returned a {type(model).__name__}, not a torch.nn.Module"
        )
    return model


def model_from_entry_point(
    name: str, loaded: object, package: str
) -> Callable[[int, int], nn.Module]:
    """The ``(num_classes, in_chans)`` factory of a callable a package registered."""
    label = f"{name!r} of package {package!r}"
    fn = checked_callable(loaded, label)

    def factory(num_classes: int, in_chans: int) -> nn.Module:
        return call_user_model(fn, label, num_classes, in_chans)

    return factory
