"""The loss configuration: one frozen dataclass, every hyper-parameter passed explicitly.

Defaults follow the CIFAR-100 setup of "Parameter-Free Logit Distillation via Sorting
Mechanism" (IEEE SPL 2025), which trains with mdistiller's recipes, and the official code of
each method:

* ``kd`` (Hinton et al. 2015; mdistiller ``CFG.KD``): ``temperature`` 4, ``ce_weight`` 0.1,
  ``kd_weight`` 0.9.
* ``dkd`` (Zhao et al., CVPR 2022; mdistiller ``CFG.DKD``): ``dkd_alpha`` 1 (TCKD weight),
  ``dkd_beta`` 8 (NCKD weight; mdistiller's default for ResNet32x4 -> ResNet8x4, other pairs use
  other values), ``dkd_temperature`` 4, ``dkd_warmup`` 20 epochs, ``dkd_ce_weight`` 1.
* ``lskd`` (Sun et al., CVPR 2024, "Logit Standardization in KD", KD + LS): the official
  command line is ``--logit-stand --base-temp 2 --kd-weight 9``, which overrides only the KD
  temperature and the KD weight of mdistiller's KD config; the CE weight stays at mdistiller's
  0.1. Hence ``lskd_temperature`` 2, ``lskd_kd_weight`` 9, ``lskd_ce_weight`` 0.1. These get
  their own fields (instead of reusing ``temperature``/``kd_weight``) so that switching
  ``--loss kd`` to ``--loss lskd`` gives each method its published setting; with z-scored
  logits a KD weight of 0.9 would make the distillation term ten times weaker than published.
* ``ctkd`` (Li et al., AAAI 2023, "Curriculum Temperature for KD", global temperature; official
  ``scripts/run_cifar_distill.sh``): CE and KD weights are the shared ``ce_weight`` 0.1 and
  ``kd_weight`` 0.9; temperature ``ctkd_t_start + ctkd_t_range * sigmoid(p)`` with
  ``t_start`` 1 and ``t_range`` 20 (CTKD's ``--t_start 1 --t_end 20``); the learnable ``p``
  starts at ``ctkd_init_param`` 1.0 (CTKD's ``Global_T`` initialises it with ``torch.ones``),
  an initial temperature of 1 + 20 * sigmoid(1) ~= 15.62; the gradient-reversal strength
  ramps from ``ctkd_lambda_min`` 0 to ``ctkd_lambda_max`` 1 along a half cosine over
  ``ctkd_lambda_epochs`` 10 epochs (CTKD's ``--decay_max 0 --decay_min -1 --decay_loops 10``,
  whose negative sign is the reversal itself, here applied by the gradient-reversal layer).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sortkd_cache.errors import ConfigError

__all__ = ["LOSS_NAMES", "LossConfig"]

#: The loss names, sorted (the order used in error messages).
LOSS_NAMES: tuple[str, ...] = ("ce", "ctkd", "dkd", "kd", "lskd")

# Fields that must be > 0, fields that must be >= 0, fields that may be any finite number.
_POSITIVE = frozenset({"temperature", "dkd_temperature", "lskd_temperature", "ctkd_t_start"})
_NON_NEGATIVE = frozenset(
    {
        "ce_weight",
        "kd_weight",
        "dkd_alpha",
        "dkd_beta",
        "dkd_warmup",
        "dkd_ce_weight",
        "lskd_ce_weight",
        "lskd_kd_weight",
        "ctkd_t_range",
        "ctkd_lambda_max",
        "ctkd_lambda_min",
        "ctkd_lambda_epochs",
    }
)


@dataclass(frozen=True)
class LossConfig:
    """Which loss to train with and all of its hyper-parameters (see the module docstring).

    Every field is validated on construction; a bad one raises :class:`ConfigError` naming the
    key and the value. ``int`` values are accepted for ``float`` fields (and stored as
    ``float``); ``bool`` is never accepted for a number.
    """

    name: str = "kd"
    # Shared by kd and ctkd.
    temperature: float = 4.0
    ce_weight: float = 0.1
    kd_weight: float = 0.9
    # dkd
    dkd_alpha: float = 1.0
    dkd_beta: float = 8.0
    dkd_temperature: float = 4.0
    dkd_warmup: int = 20
    dkd_ce_weight: float = 1.0
    # lskd
    lskd_temperature: float = 2.0
    lskd_ce_weight: float = 0.1
    lskd_kd_weight: float = 9.0
    # ctkd
    ctkd_t_start: float = 1.0
    ctkd_t_range: float = 20.0
    ctkd_init_param: float = 1.0
    ctkd_lambda_max: float = 1.0
    ctkd_lambda_min: float = 0.0
    ctkd_lambda_epochs: int = 10

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = _check_field(f.name, _FIELD_TYPES[f.name], getattr(self, f.name))
            object.__setattr__(self, f.name, value)

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain ``{name: value}`` dict (JSON/TOML-serialisable)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LossConfig:
        """Build from a mapping; keys left out take their defaults.

        Raises :class:`ConfigError` for a non-mapping, an unknown key, a wrong type or a bad
        value, naming the key and the value.
        """
        if not isinstance(d, Mapping):
            raise ConfigError(f"loss config must be a mapping, got {d!r}")
        for key in d:
            if key not in _FIELD_TYPES:
                known = ", ".join(sorted(_FIELD_TYPES))
                raise ConfigError(f"unknown loss config key {key!r}; known: {known}")
        return cls(**dict(d))


def _check_field(key: str, kind: type, value: Any) -> Any:
    """Return ``value`` (an int widened to float for float fields) or raise ConfigError."""
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"loss config key {key!r} must be a string, got {value!r}")
        if key == "name" and value not in LOSS_NAMES:
            raise ConfigError(f"unknown loss {value!r}; known: {', '.join(LOSS_NAMES)}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"loss config key {key!r} must be {_TYPE_WORD[kind]}, got {value!r}")
    if kind is int and not isinstance(value, int):
        raise ConfigError(f"loss config key {key!r} must be an integer, got {value!r}")
    if kind is float:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"loss config key {key!r} must be finite, got {value!r}")
    if key in _POSITIVE and not value > 0:
        raise ConfigError(f"loss config key {key!r} must be > 0, got {value!r}")
    if key in _NON_NEGATIVE and not value >= 0:
        raise ConfigError(f"loss config key {key!r} must be >= 0, got {value!r}")
    return value


_TYPE_WORD: dict[type, str] = {int: "an integer", float: "a number"}
# Field name -> its type, read from the annotations (strings under postponed evaluation).
_FIELD_TYPES: dict[str, type] = {
    f.name: {"str": str, "int": int, "float": float}[str(f.type)]
    for f in dataclasses.fields(LossConfig)
}
