"""How a loss declares its configuration: a frozen dataclass of options, registered by name.

Each loss module defines one frozen dataclass subclassing :class:`Loss`, whose fields are the
loss's options with their paper defaults (declared with the stage configurations'
:func:`~sortkd_cache.options.opt`: default, help and bounds ``ge``/``gt``/``le``, checked by
the same :func:`~sortkd_cache.options.check_fields`), and registers it in :data:`LOSSES`.
Nothing else re-declares those options: the CLI flags of ``train``, the recipe keys and
``config.json`` are all read from these fields. The defaults follow the CIFAR-100 setup of
"Parameter-Free Logit Distillation via Sorting Mechanism" (IEEE SPL 2025), which trains with
mdistiller's recipes, and each method's official code; every loss module's docstring names
its sources.

* ``ce``: no options (plain cross-entropy).
* ``kd``: ``temperature`` 4, ``ce_weight`` 0.1, ``kd_weight`` 0.9 (mdistiller ``CFG.KD``).
* ``dkd``: ``dkd_alpha`` 1, ``dkd_beta`` 8, ``temperature`` 4, ``dkd_warmup`` 20,
  ``ce_weight`` 1 (mdistiller ``CFG.DKD``; beta 8 is its ResNet32x4 -> ResNet8x4 value).
* ``lskd``: ``temperature`` 2, ``ce_weight`` 0.1, ``kd_weight`` 9 (the official
  ``--logit-stand --base-temp 2 --kd-weight 9`` on mdistiller's KD config).
* ``ctkd``: ``ce_weight`` 0.1, ``kd_weight`` 0.9 and the learnable temperature
  ``ctkd_t_start + ctkd_t_range * sigmoid(p)`` with ``t_start`` 1, ``t_range`` 20 (CTKD's
  ``--t_start 1 --t_end 20``), ``p`` starting at ``ctkd_init_param`` 1.0 (``Global_T``'s
  ``torch.ones``: an initial temperature of ~15.62); the gradient-reversal strength ramps from
  ``ctkd_lambda_min`` 0 to ``ctkd_lambda_max`` 1 along a half cosine over
  ``ctkd_lambda_epochs`` 10 epochs (CTKD's ``--decay_max 0 --decay_min -1 --decay_loops 10``,
  whose negative sign is the reversal itself, applied by the gradient-reversal layer).

An option given for a loss that does not declare it is an error naming the option and the
loss: there is no silently ignored hyper-parameter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

from sortkd_cache._registry import Registry
from sortkd_cache.errors import ConfigError
from sortkd_cache.options import Spell, check_fields, check_value, field_type, opt_of

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from sortkd_cache.losses._temperature import CTKDTemperature

__all__ = [
    "LOSSES",
    "Loss",
    "LossInputs",
    "OptionInfo",
    "TeacherRows",
    "loss_options",
    "make_loss",
    "option_info",
]


@dataclass(frozen=True)
class OptionInfo:
    """What a loss declares about one option: its type, default, help and bounds (read from
    its :func:`~sortkd_cache.options.opt` field and annotation)."""

    name: str
    kind: type  # int or float
    default: float
    help: str
    bounds: str = ""  #: the bounds as the help shows them (``> 0 and <= 100``)


def _spell_for(loss: str, spell: Spell) -> Spell:
    """How an error names a loss option: ``--temperature (loss 'kd')``."""
    return lambda key: f"{spell(key)} (loss '{loss}')"


class TeacherRows(Protocol):
    """A batch of teacher rows, whatever their layout (see the module docstring)."""

    def __len__(self) -> int: ...

    def logits(
        self,
        student: Tensor,
        target: Tensor,
        temperature: float | Tensor,
        *,
        standardized: bool = False,
    ) -> Tensor:
        """The teacher logits ``[B, C]`` a loss at ``temperature`` sees (z-scored per row when
        ``standardized``: LSKD). ``student`` and ``target`` are the batch's, for rows that
        shape their answer by them."""
        ...

    def kd_terms(
        self,
        student: Tensor,
        target: Tensor,
        temperature: float,
        weights: tuple[float, float],
        *,
        standardized: bool = False,
    ) -> Tensor | None:
        """``[ce_weight * CE, kd_weight * KD]`` (a ``[2]`` tensor) computed straight from the
        rows, or None where these rows have no faster way than the dense formula."""
        ...

    def dkd_terms(
        self, student: Tensor, target: Tensor, alpha: float, beta: float, temperature: float
    ) -> Tensor | None:
        """DKD's ``(alpha * TCKD + beta * NCKD) * T^2`` computed from the rows (sampled rows
        estimate it), or None where the dense formula on :meth:`logits` applies."""
        ...

    def with_tail(self, tail: str) -> TeacherRows:
        """These rows with the tail handling ``tail`` (sparse rows; others refuse)."""
        ...


class LossInputs(NamedTuple):
    """What a loss sees of one batch."""

    student: Tensor  #: student logits [B, C] (gradients flow to them)
    #: the teacher's rows (dense logits [B, C] or sparse top-K rows); None for ``ce``
    teacher: TeacherRows | None
    target: Tensor  #: int64 labels [B]
    epoch: int  #: counted from 1
    temperature_module: CTKDTemperature | None = None  #: ``ctkd``'s learnable temperature

    def teacher_of(self, loss: str) -> TeacherRows:
        """The teacher rows, or ConfigError when a distillation loss got None."""
        if self.teacher is None:
            raise ConfigError(f"loss {loss!r} needs teacher logits, got None")
        return self.teacher


@dataclass(frozen=True)
class Loss:
    """Base of every loss configuration; an instance is the loss, ready to call.

    Subclasses are frozen dataclasses whose fields are :func:`~sortkd_cache.options.opt`
    fields; they set ``name``, ``needs_teacher`` and implement :meth:`terms`. Every option is
    checked on construction.
    """

    name: ClassVar[str] = ""
    needs_teacher: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_fields(self, _spell_for(self.name, str))

    def terms(self, x: LossInputs) -> dict[str, Tensor]:
        """The weighted loss terms (``"ce"``, ``"kd"``) of one batch."""
        raise NotImplementedError

    def make_temperature_module(
        self, device: torch.device | str | None = None
    ) -> CTKDTemperature | None:
        """A learnable temperature for losses that have one (``ctkd``), else None."""
        return None

    def options(self) -> dict[str, float]:
        """The option values as used, ``{field: value}``."""
        return {info.name: getattr(self, info.name) for info in option_info(type(self))}

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., **options}``, JSON/TOML-serialisable; :func:`make_loss` reverses it."""
        return {"name": self.name, **self.options()}


def _from_package(name: str, loaded: object, package: str) -> type[Loss]:
    """A ``sortkd_cache.losses`` entry point: a :class:`Loss` subclass whose ``name`` is the
    entry point's (its options are its fields, as a built-in loss's)."""
    if not (isinstance(loaded, type) and issubclass(loaded, Loss) and loaded.name == name):
        raise ConfigError(
            f"loss entry point {name!r} of package {package!r} is not a Loss subclass named "
            f"{name!r}: got {loaded!r}"
        )
    return loaded


#: Every loss, by name (each loss module registers its class here; other packages register
#: theirs in the ``sortkd_cache.losses`` entry-point group).
LOSSES: Registry[type[Loss]] = Registry("loss", group="sortkd_cache.losses", adapt=_from_package)


def option_info(cls: type[Loss]) -> tuple[OptionInfo, ...]:
    """The options a loss class declares, in field order."""
    out = []
    for f in dataclasses.fields(cls):
        info = opt_of(f)
        kind = field_type(cls, f)
        out.append(OptionInfo(f.name, kind, f.default, info.help, info.bounds_text()))  # type: ignore[arg-type]
    return tuple(out)


def loss_options() -> dict[str, dict[str, OptionInfo]]:
    """Every option of every registered loss: ``{option: {loss: OptionInfo}}``, sorted."""
    table: dict[str, dict[str, OptionInfo]] = {}
    for name, cls in LOSSES.items():
        for info in option_info(cls):
            table.setdefault(info.name, {})[name] = info
    for key, per_loss in table.items():
        kinds = {info.kind for info in per_loss.values()}
        if len(kinds) > 1:
            raise ConfigError(f"loss option '{key}' is declared with different types")
    return dict(sorted(table.items()))


def make_loss(name: str, options: Mapping[str, Any] | None = None, *, spell: Spell = str) -> Loss:
    """The loss ``name`` with ``options`` set and every other option at its default.

    ``spell`` renders an option's name the way the user wrote it (``--dkd-beta``,
    ``students[0].dkd_beta``) for the one-line ConfigError raised for an unknown loss, an
    option the loss does not take, or a bad value.
    """
    cls = LOSSES.get(name)
    given = dict(options or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in given.items():
        if key not in fields:
            takes = ", ".join(spell(k) for k in fields) or "none"
            raise ConfigError(
                f"{spell(key)} = {value!r} does not apply to loss '{name}' (its options: {takes})"
            )
        given[key] = check_value(fields[key], value, _spell_for(name, spell), owner=cls)
    return cls(**given)
