"""Optimizers as registered, typed options: ``sgd`` and ``adamw``.

Each optimizer is a frozen dataclass of its options (declared with
:func:`~sortkd_cache.options.opt`: default, help, bounds), registered in :data:`OPTIMIZERS`
under the name ``--optimizer`` takes, and names the ``torch.optim`` class that steps it. The
train configuration takes the fields flat (``--momentum``, ``--nesterov``, ``--weight-decay``,
``--adam-beta1``, ...), each declared here once; :func:`make_optimizer` builds the chosen one
and refuses an option it does not take. Building the ``torch.optim`` object (for a model's
parameters or for stacked tensors) is :func:`~sortkd_cache.training.build_optimizer`.

* ``sgd`` (default): ``torch.optim.SGD`` with momentum 0.9, weight decay 5e-4 and no Nesterov
  (mdistiller's CIFAR-100 setup; what every run before these options trained with).
* ``adamw``: ``torch.optim.AdamW`` with betas (0.9, 0.999) and eps 1e-8 (torch's defaults).
  Its weight decay is decoupled (the weights shrink by ``lr * weight_decay`` per step); its
  default is the same 5e-4 as SGD's (torch's own default is 1e-2: give ``--weight-decay``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from sortkd_cache._registry import Registry
from sortkd_cache.errors import ConfigError
from sortkd_cache.options import Spell, flag, inherit, opt
from sortkd_cache.training._component import Options, make_component

__all__ = ["OPTIMIZERS", "SGD", "AdamW", "Optimizer", "make_optimizer"]


@dataclass(frozen=True)
class Optimizer(Options):
    """Base of every optimizer configuration: its options and the ``torch.optim`` class."""

    name: ClassVar[str] = ""
    #: the ``torch.optim`` class that steps it (the stacked path uses the same class)
    torch_class: ClassVar[str] = ""

    def kwargs(self) -> dict[str, object]:
        """The ``torch.optim`` keyword arguments other than ``lr``."""
        raise NotImplementedError


#: Optimizer name -> configuration class (what ``--optimizer`` accepts).
OPTIMIZERS: Registry[type[Optimizer]] = Registry("optimizer")


@OPTIMIZERS.register("sgd")
@dataclass(frozen=True)
class SGD(Optimizer):
    """``torch.optim.SGD``: momentum, optional Nesterov, weight decay (L2, in the gradient)."""

    name: ClassVar[str] = "sgd"
    torch_class: ClassVar[str] = "SGD"

    momentum: float = opt(0.9, "SGD momentum.", ge=0, le=1.0, recipe=True)
    nesterov: bool = opt(False, "SGD: Nesterov momentum (needs --momentum > 0).", recipe=True)
    weight_decay: float = opt(
        5e-4,
        "Weight decay (sgd: added to the gradient; adamw: decoupled, the weights shrink by "
        "lr * weight decay each step).",
        ge=0, le=10.0, recipe=True,
    )  # fmt: skip

    def check(self, spell: Spell) -> None:
        if self.nesterov and self.momentum == 0:
            raise ConfigError(f"{spell('nesterov')} needs {spell('momentum')} > 0, got 0.0")

    def kwargs(self) -> dict[str, object]:
        return {
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "nesterov": self.nesterov,
        }


@OPTIMIZERS.register("adamw")
@dataclass(frozen=True)
class AdamW(Optimizer):
    """``torch.optim.AdamW``: Adam with decoupled weight decay."""

    name: ClassVar[str] = "adamw"
    torch_class: ClassVar[str] = "AdamW"

    weight_decay: float = inherit(SGD, "weight_decay")
    adam_beta1: float = opt(0.9, "AdamW: decay of the gradient average.", ge=0, le=0.999999,
                            recipe=True)  # fmt: skip
    adam_beta2: float = opt(0.999, "AdamW: decay of the squared-gradient average.", ge=0,
                            le=0.999999, recipe=True)  # fmt: skip
    adam_eps: float = opt(1e-8, "AdamW: added to the denominator.", gt=0, le=1.0, recipe=True)

    def kwargs(self) -> dict[str, object]:
        return {
            "betas": (self.adam_beta1, self.adam_beta2),
            "eps": self.adam_eps,
            "weight_decay": self.weight_decay,
        }


def make_optimizer(values: Mapping[str, object], spell: Spell = flag) -> Optimizer:
    """The optimizer named ``values["optimizer"]`` (default ``sgd``) with its options from
    ``values`` (flat, as a train configuration holds them); a ConfigError line for a bad
    value or an option the optimizer does not take."""
    return make_component(OPTIMIZERS, "optimizer", {"optimizer": "sgd", **values}, spell)
