"""timm models by name: ``timm:ARCH`` or ``timm:ARCH.TAG`` (the optional ``[timm]`` extra).

timm is imported only when such a name is used. Without pretrained weights a model is built
with timm's own (seeded) initialisation; its pretrained config (the tag's, or the
architecture's default tag) still gives the preprocessing (mean, std, input size,
interpolation) its forward expects. Pretrained weights come from the local Hugging Face cache
(or the torch hub cache for weights timm publishes by URL), downloaded as timm does where the
machine is online; see :mod:`sortkd_cache.models._pretrained`.
"""

from __future__ import annotations

import difflib
import functools
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sortkd_cache.errors import ConfigError, ModelError

if TYPE_CHECKING:
    import torch.nn as nn

    from sortkd_cache.models._preprocess import TeacherPreprocess

__all__ = [
    "TIMM_PREFIX",
    "create_timm_model",
    "is_timm_name",
    "timm_name_exists",
    "timm_pretrained_cfg",
    "timm_preprocess",
]

TIMM_PREFIX = "timm:"


def is_timm_name(name: object) -> bool:
    return isinstance(name, str) and name.startswith(TIMM_PREFIX)


def import_timm() -> ModuleType:
    """timm, or a one-line :class:`ModelError` saying how to install it."""
    try:
        import timm
    except ImportError:
        raise ModelError(
            "timm: models need the optional timm package: pip install 'sortkd-cache[timm]'"
        ) from None
    return timm


@functools.lru_cache(maxsize=1)
def _architectures() -> tuple[str, ...]:
    return tuple(import_timm().list_models())


def _base(name: str) -> str:
    """The timm name of ``timm:NAME``, checked: a known architecture and, if given, tag."""
    timm = import_timm()
    base = name[len(TIMM_PREFIX) :]
    arch, _, tag = base.partition(".")
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, _architectures(), n=1)
        hint = f" (did you mean 'timm:{close[0]}'?)" if close else ""
        raise ModelError(f"unknown timm model {name!r}{hint}; see timm.list_models()")
    if tag and base not in timm.list_pretrained(base):
        tags = [t.partition(".")[2] for t in timm.list_pretrained(f"{arch}.*")]
        raise ModelError(
            f"unknown timm pretrained tag {tag!r} of {name!r}; known: {', '.join(tags) or 'none'}"
        )
    return base


def timm_name_exists(name: str) -> bool:
    """Whether ``timm:NAME`` names a timm model (and tag, if given); without timm installed
    the :class:`ModelError` saying how to install it propagates."""
    import_timm()
    try:
        _base(name)
    except ModelError:
        return False
    return True


def timm_pretrained_cfg(name: str) -> dict[str, Any]:
    """The pretrained config (the tag's, or the architecture's default) of ``timm:NAME``."""
    from timm.models import get_pretrained_cfg

    base = _base(name)
    cfg = get_pretrained_cfg(base)
    return {} if cfg is None else dict(cfg.to_dict())  # type: ignore[no-untyped-call]


def create_timm_model(
    name: str, num_classes: int, in_chans: int, *, weights_file: str | None = None
) -> nn.Module:
    """Build ``timm:NAME`` with ``num_classes`` outputs; with ``weights_file`` (a pretrained
    file from the cache) loaded the way timm loads pretrained weights."""
    timm = import_timm()
    base = _base(name)
    kwargs: dict[str, Any] = {"num_classes": num_classes, "in_chans": in_chans}
    if weights_file is not None:
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": weights_file})
    try:
        model: nn.Module = timm.create_model(base, **kwargs)
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        text = " ".join(str(exc).split())[:200]
        raise ModelError(f"cannot build {name!r}: {type(exc).__name__}: {text}") from exc
    return model


def timm_preprocess(
    name: str, model: nn.Module | None = None, interpolation: str | None = None
) -> TeacherPreprocess:
    """The preprocessing timm's data config gives ``timm:NAME`` (``model``'s when built);
    ``interpolation`` replaces the config's (one a tensor resize cannot compute is refused)."""
    from timm.data.config import resolve_data_config

    from sortkd_cache.models._preprocess import TeacherPreprocess

    if model is not None:
        cfg = resolve_data_config({}, model=model)  # type: ignore[no-untyped-call]
    else:
        pretrained = timm_pretrained_cfg(name)
        cfg = resolve_data_config({}, pretrained_cfg=pretrained)  # type: ignore[no-untyped-call]
    size = cfg["input_size"]
    interpolation = interpolation or str(cfg.get("interpolation", "bilinear"))
    if interpolation not in ("nearest", "bilinear", "bicubic"):
        raise ConfigError(
            f"{name!r} asks for {interpolation!r} interpolation, which a tensor resize does "
            "not compute; give --teacher-interpolation bilinear|bicubic|nearest"
        )
    return TeacherPreprocess(
        mean=tuple(float(m) for m in cfg["mean"]),
        std=tuple(float(s) for s in cfg["std"]),
        input_size=(int(size[1]), int(size[2])),
        interpolation=interpolation,
        source="timm",
        crop_pct=float(cfg.get("crop_pct") or 0.875),
    )
