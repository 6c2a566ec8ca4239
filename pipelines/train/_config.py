"""The configuration of one training run, validated whole before anything is touched.

:class:`TrainConfig` owns the run's options: each is one :func:`~sortkd_cache.options.opt`
field whose metadata (help, choices, bounds, what it applies to, runtime or computing, recipe
key) generates the ``train`` command's options, the recipe's variant keys and their checks,
and ``config.json`` with its replay. The loss's own options live in ``loss_options`` and are
declared by the loss itself (:mod:`sortkd_cache.losses`): an option left out takes the chosen
loss's paper default, an option the loss does not take is refused. Construction checks every
value (types, ranges, choices, known architectures and losses, options that would do nothing),
so a bad value is one ConfigError line before a run directory, a store or a model is touched.
Error messages name options as the user spelled them (``--lr``, ``key 'students[0].lr'``).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, InitVar, asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from sortkd_cache.augment import get_recipe
from sortkd_cache.errors import ConfigError, ModelError
from sortkd_cache.losses import LOSSES, make_loss
from sortkd_cache.models import MODELS
from sortkd_cache.options import (
    Applies,
    Spell,
    check_applies,
    check_fields,
    field_names,
    flag,
    named,
    opt_of,
)
from sortkd_cache.pipelines.train._sections import (
    LOGIT_CHOICES,
    SEED_MAX,
    Data,
    Output,
    Runtime,
    Schedule,
    Streaming,
    Student,
    TeacherRows,
)
from sortkd_cache.pipelines.train._tensorboard import check_log
from sortkd_cache.sparse import check_quantize_options
from sortkd_cache.training import Precision

if TYPE_CHECKING:
    from sortkd_cache.losses import Loss

__all__ = [
    "LOGIT_CHOICES",
    "RUNTIME_KEYS",
    "SEED_MAX",
    "Schedule",
    "TrainConfig",
    "check_schedule",
    "flag",
    "resume_difference",
]


@dataclass(frozen=True, kw_only=True)
class TrainConfig(Output, Runtime, Streaming, TeacherRows, Data, Student, Schedule):
    """One training run (see ``sortkd-cache train --help`` for each option), built from its
    sections (:mod:`~sortkd_cache.pipelines.train._sections`): the schedule, the student, the
    data, the teacher rows, the streaming, the runtime and the output, in this order. Its
    fields are flat: ``TrainConfig(lr=0.1)``, ``--lr``, ``"lr"`` in ``config.json``.

    ``spell`` (not a field) names an option the way the caller's user wrote it in errors.
    """

    spell: InitVar[Spell | None] = None

    def __post_init__(self, spell: Spell | None) -> None:
        object.__setattr__(self, "loss_options", dict(self.loss_options))
        _validate(self, spell or flag)

    @property
    def order_seed(self) -> int:
        """The seed of the data and view order: ``data_seed``, else ``seed``."""
        return self.seed if self.data_seed is None else self.data_seed

    def precision_config(self) -> Precision:
        """The model's compute switches (precision, channels-last, compile)."""
        return Precision(self.precision, self.channels_last, self.compile)

    def loss_config(self, spell: Spell = flag) -> Loss:
        """The loss with the options as used (defaults filled in)."""
        return make_loss(self.loss, self.loss_options, spell=spell)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data: the loss options resolved, storage option values redacted."""
        d = asdict(self)
        d.pop("replay_of")
        d["milestones"] = list(self.milestones)
        d["loss_options"] = self.loss_config().options()
        if self.storage_options:
            d["storage_options"] = {k: "<redacted>" for k in self.storage_options}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], spell: Spell = flag) -> TrainConfig:
        """From :meth:`to_dict` data (a run's ``config.json`` minus its recorded sections)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown train option '{unknown[0]}'")
        if not isinstance(d.get("loss_options", {}), Mapping):
            raise ConfigError(f"--loss options must be a mapping, got {d['loss_options']!r}")
        data = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        for key in ("student", "out"):  # required: None is "missing", as a left-out key
            data.setdefault(key, None)
        return cls(**data, spell=spell)


def check_schedule(s: Schedule, spell: Spell = flag) -> None:
    """Refuse a schedule that cannot train: the bounds of its fields (epochs >= 1, batch >= 2,
    lr and lr_decay > 0, ...), the optimizer's and the lr schedule's own checks (milestones
    increasing epochs >= 1, a warm-up shorter than the run, Nesterov with momentum), and an
    option the chosen optimizer or schedule does not take. ``spell`` names a field as the
    user wrote it (a CLI flag, a recipe key)."""
    check_fields(s, spell)
    s.optimizer_config(spell)
    s.schedule_config(spell)


#: When an option does anything: (condition, why it does nothing otherwise).
APPLIES: Applies = {
    "teacher": (
        lambda c: _needs_teacher(c.loss),
        lambda c, s: f"with {s('loss')} {c.loss}: it has no teacher term",
    ),
    "online_teacher": (
        lambda c: c.online_teacher is not None,
        lambda c, s: f"without {s('online_teacher')}: it only sets the online teacher",
    ),
    "no_cache": (
        lambda c: c.cache is None,
        lambda c, s: f"with {s('cache')}: the cache fixes the augmentation",
    ),
    "sample": (
        lambda c: c.sample is not None,
        lambda c, s: f"without {s('sample')}: it shapes the sampled rows",
    ),
    "log": (
        lambda c: c.log is not None,
        lambda c, s: f"without {s('log')}: it sets how often the step loss is logged",
    ),
}


def _needs_teacher(loss: str) -> bool:
    return LOSSES.get(loss).needs_teacher


def _validate(cfg: TrainConfig, spell: Spell) -> None:
    """Every check that needs no file: types, ranges, choices, names, what applies."""
    check_schedule(cfg, spell)
    if cfg.resume and cfg.overwrite:
        raise ConfigError(f"{spell('resume')} and {spell('overwrite')} exclude each other")
    _validate_names(cfg, spell)
    check_applies(cfg, APPLIES, spell)
    check_quantize_options(cfg, spell)
    check_log(cfg.log)


def _validate_names(cfg: TrainConfig, spell: Spell) -> None:
    if not cfg.student:
        raise ConfigError(f"{spell('student')} must name an architecture, got {cfg.student!r}")
    _architecture(cfg.student, spell("student"))
    if cfg.online_teacher is not None:
        _architecture(cfg.online_teacher, spell("online_teacher"))
    cfg.loss_config(spell)
    if cfg.cache is None and cfg.dataset is None:
        raise ConfigError("give --cache STORE (distillation) or --dataset SPEC (plain training)")
    if cfg.cache is None and _needs_teacher(cfg.loss) and cfg.online_teacher is None:
        raise ConfigError(
            f"{spell('loss')} {cfg.loss} needs --cache STORE (or {spell('online_teacher')} ARCH)"
        )
    if cfg.dataset is not None:
        from sortkd_cache.datasets import parse_dataset_spec

        dataset = cfg.dataset
        named(spell("dataset"), lambda: parse_dataset_spec(dataset))
    if cfg.augment is not None:
        augment = cfg.augment
        recipe = named(spell("augment"), lambda: get_recipe(augment))
        if recipe.kind == "eval" and cfg.augment == "eval":
            raise ConfigError(f"{spell('augment')} eval needs a size here: give eval:SIZE")


def _architecture(name: str, option: str) -> None:
    if name in MODELS:  # a registered name: known without importing torch (report, run)
        return
    from sortkd_cache.models import check_architecture, list_models, model_exists

    if ":" in name and not name.startswith("timm:"):  # module:callable says what is wrong
        try:
            check_architecture(name)
        except ModelError as exc:
            raise ConfigError(f"{option}: {exc}") from None
    if not model_exists(name):
        close = difflib.get_close_matches(name, list_models(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown {option} architecture {name!r}{hint}; known: {', '.join(list_models())} "
            "(plus torchvision classification models)"
        )


#: Options that change how a run executes or where it reads from, never what it computes:
#: a resume may change them (every other option must match the stored configuration).
RUNTIME_KEYS = frozenset(field_names(TrainConfig, runtime=True))


def _effective(d: Mapping[str, Any], key: str, fallback: str | None, default: object) -> object:
    """``d``'s value of ``key``: a key recorded before the option existed reads as its default
    (or, for an option with a fallback, as the fallback's value)."""
    value = d.get(key, default if fallback is None else None)
    return d.get(fallback) if value is None and fallback is not None else value


def resume_difference(stored: Mapping[str, Any], cfg: TrainConfig) -> str | None:
    """The first option (in declaration order) where ``cfg`` differs from a stored run's
    ``config.json``, as one line; None when a resume may continue that run. An option recorded
    before it existed reads as its default (``data_seed``: the run's ``seed``); one that does
    nothing in this run (``logits`` of a CE run, once accepted) is not compared."""
    now = cfg.to_dict()
    for f in fields(TrainConfig):
        info = opt_of(f)
        if info.runtime or (info.applies is not None and not APPLIES[info.applies][0](cfg)):
            continue  # how it ran, or an option that does nothing in this run (nor did then)
        default = None if f.default is MISSING else f.default
        default = list(default) if isinstance(default, tuple) else default
        old, new = (_effective(d, f.name, info.fallback, default) for d in (stored, now))
        if f.name == "loss_options" and isinstance(old, dict) and isinstance(new, dict):
            for key in sorted(set(old) | set(new)):
                if old.get(key) != new.get(key):
                    return f"{flag(key)} {json.dumps(old.get(key))} -> {json.dumps(new.get(key))}"
        elif old != new:
            return f"{flag(f.name)} {json.dumps(old)} -> {json.dumps(new)}"
    return None


def recipe_keys() -> Sequence[str]:
    """The train options a recipe variant may set (``[train]`` / ``[[students]]`` keys)."""
    return field_names(TrainConfig, recipe=True)
