"""The configuration of one training run, validated whole before anything is touched.

:class:`TrainConfig` holds the run's options; the loss's own options live in ``loss_options``
and are declared by the loss itself (:mod:`sortkd_cache.losses`): an option left out takes the
chosen loss's paper default, an option the loss does not take is refused. Construction checks
every value (ranges, choices, known architectures and losses), so a bad value is one
ConfigError line before a run directory, a store or a model is touched. Error messages name
options as the CLI spells them (``--lr``, ``--dkd-beta``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from sortkd_cache.errors import ConfigError
from sortkd_cache.sorting import LOGIT_KINDS
from sortkd_cache.sparse._spec import TAILS

if TYPE_CHECKING:
    from sortkd_cache.losses import Loss

__all__ = [
    "DATA_PATHS",
    "LOGIT_CHOICES",
    "RUNTIME_KEYS",
    "Schedule",
    "TrainConfig",
    "check_schedule",
    "flag",
    "resume_difference",
]

#: ``raw`` and every registered logits transform (``sort``, ``swap``).
LOGIT_CHOICES: tuple[str, ...] = LOGIT_KINDS
SOFT_LABEL_MODES = ("auto", "view", "stream")  # resolved in sortkd_cache/data/_plan.py
DATA_PATHS = ("auto", "device", "loader")
VIEW_ORDERS = ("cyclic", "shuffle")
TEACHER_INITS = ("checkpoint", "random")
#: Options that change how a run executes or where it reads from, never what it computes:
#: a resume may change them (every other option must match the stored configuration).
RUNTIME_KEYS = frozenset(
    {
        "out",
        "cache",
        "dataset",
        "data_root",
        "download",
        "device",
        "data_path",
        "workers",
        "eval_batch_size",
        "resume",
        "overwrite",
        "stop_after",
        "progress",
        "storage_options",
    }
)


Spell = Callable[[str], str]


def flag(key: str) -> str:
    """The CLI spelling of an option: ``dkd_beta`` -> ``--dkd-beta``."""
    return "--" + key.replace("_", "-")


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """How a model is optimised: SGD with momentum, the lr decayed at milestones.

    Defaults: the paper's CIFAR-100 setup (mdistiller). The train stage, a recipe's teacher and
    its student variants all take these fields from here (checked by :func:`check_schedule`).
    """

    epochs: int = 240
    batch_size: int = 64
    lr: float = 0.05
    milestones: tuple[int, ...] = (150, 180, 210)
    lr_decay: float = 0.1
    weight_decay: float = 5e-4
    momentum: float = 0.9

    def schedule(self) -> dict[str, Any]:
        """The schedule's fields (``TrainConfig`` keyword arguments)."""
        return {f.name: getattr(self, f.name) for f in fields(Schedule)}


@dataclass(frozen=True, kw_only=True)
class TrainConfig(Schedule):
    """One training run (see ``sortkd-cache train --help`` for each option)."""

    student: str
    out: str
    cache: str | None = None
    dataset: str | None = None
    data_root: str | None = None
    download: bool = False
    logits: str = "raw"
    #: top-K soft labels: a sparse store's K (checked), or the K a dense store's rows and an
    #: online teacher's logits are truncated to per batch, as ``copy --topk K`` would
    topk: int | None = None
    #: the sparse loss's tail handling (None: ``sortkd_cache.sparse.DEFAULT_TAIL``)
    sparse_tail: str | None = None
    loss: str = "kd"
    #: The loss's own options (``{"temperature": 2.0}``); the rest take the loss's defaults.
    loss_options: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0
    #: the data order's and the view order's seed (None: ``seed``); a sweep's members share it
    data_seed: int | None = None
    augment: str | None = None
    views_order: str = "cyclic"
    num_classes: int | None = None
    online_teacher: str | None = None
    teacher_ckpt: str | None = None
    teacher_init: str = "checkpoint"
    device: str = "auto"
    data_path: str = "auto"
    workers: int = 0
    #: soft labels per epoch: a whole view, or streamed chunk by chunk (auto: past 64 MiB);
    #: when streaming, chunks per shuffle window (default 2) and lanes (default: from the batch)
    soft_labels: str = "auto"
    stream_window: int | None = None
    stream_lanes: int | None = None
    eval_batch_size: int = 512
    resume: bool = False
    overwrite: bool = False
    stop_after: int | None = None
    progress: bool = True
    storage_options: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", tuple(self.milestones))
        object.__setattr__(self, "loss_options", dict(self.loss_options))
        _validate(self)

    @property
    def order_seed(self) -> int:
        """The seed of the data order and the shuffled view order (``data_seed`` or ``seed``)."""
        return self.seed if self.data_seed is None else self.data_seed

    def loss_config(self) -> Loss:
        """The loss with the options as used (defaults filled in)."""
        from sortkd_cache.losses import make_loss

        return make_loss(self.loss, self.loss_options, spell=flag)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data: the loss options resolved, storage option values redacted."""
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        d["loss_options"] = self.loss_config().options()
        if self.storage_options:
            d["storage_options"] = {k: "<redacted>" for k in self.storage_options}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """From :meth:`to_dict` data (a run's ``config.json`` minus its recorded sections)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown train option '{unknown[0]}'")
        for key in ("student", "out"):
            if d.get(key) is None:
                raise ConfigError(f"missing {flag(key)}")
        data = dict(d)
        if "milestones" in data:
            data["milestones"] = _int_tuple("milestones", data["milestones"])
        if not isinstance(data.get("loss_options", {}), Mapping):
            raise ConfigError(f"--loss options must be a mapping, got {data['loss_options']!r}")
        return cls(**data)


def _int_tuple(key: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise ConfigError(f"{flag(key)} must be a list of integers, got {value!r}")
    return tuple(value)


def _number(cfg: Any, key: str, *, low: float, strict: bool, spell: Spell = flag) -> None:
    value = getattr(cfg, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{spell(key)} must be a number, got {value!r}")
    ok = math.isfinite(value) and (value > low if strict else value >= low)
    if not ok:
        sign = ">" if strict else ">="
        raise ConfigError(f"{spell(key)} must be a finite number {sign} {low:g}, got {value!r}")


def _integer(cfg: Any, key: str, low: int, *, optional: bool = False, spell: Spell = flag) -> None:
    value = getattr(cfg, key)
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{spell(key)} must be an integer >= {low}, got {value!r}")


def check_schedule(s: Schedule, spell: Spell = flag) -> None:
    """Refuse a schedule that cannot train: epochs < 1, batch < 2, lr or lr_decay <= 0 (or
    not finite), negative momentum or weight decay, milestones not increasing epochs >= 1.
    ``spell`` names a field as the user wrote it (a CLI flag, a recipe key)."""
    _integer(s, "epochs", 1, spell=spell)
    _integer(s, "batch_size", 2, spell=spell)
    _number(s, "lr", low=0.0, strict=True, spell=spell)
    _number(s, "lr_decay", low=0.0, strict=True, spell=spell)
    _number(s, "momentum", low=0.0, strict=False, spell=spell)
    _number(s, "weight_decay", low=0.0, strict=False, spell=spell)
    m = s.milestones
    if any(isinstance(v, bool) or not isinstance(v, int) for v in m) or any(
        b <= a for a, b in itertools.pairwise(m)
    ):
        raise ConfigError(f"{spell('milestones')} must be increasing epochs, got {list(m)}")
    if m and m[0] < 1:
        raise ConfigError(f"{spell('milestones')} must be epochs >= 1, got {list(m)}")


def _choice(cfg: TrainConfig, key: str, choices: tuple[str, ...]) -> None:
    value = getattr(cfg, key)
    if value not in choices:
        raise ConfigError(f"unknown {flag(key)} {value!r}; known: {', '.join(choices)}")


def _validate(cfg: TrainConfig) -> None:
    """Every check that needs no file: ranges, choices, names (see the module docstring)."""
    check_schedule(cfg)
    for key, low in (("eval_batch_size", 1), ("workers", 0), ("seed", 0)):
        _integer(cfg, key, low)
    _integer(cfg, "data_seed", 0, optional=True)
    _integer(cfg, "num_classes", 1, optional=True)
    _integer(cfg, "stop_after", 1, optional=True)
    _integer(cfg, "stream_window", 1, optional=True)
    _integer(cfg, "stream_lanes", 1, optional=True)
    _integer(cfg, "topk", 1, optional=True)
    _choice(cfg, "logits", LOGIT_CHOICES)
    if cfg.sparse_tail is not None:
        _choice(cfg, "sparse_tail", TAILS)
    _choice(cfg, "views_order", VIEW_ORDERS)
    _choice(cfg, "data_path", DATA_PATHS)
    _choice(cfg, "soft_labels", SOFT_LABEL_MODES)
    _choice(cfg, "teacher_init", TEACHER_INITS)
    if cfg.resume and cfg.overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    _validate_names(cfg)


def _validate_names(cfg: TrainConfig) -> None:
    from sortkd_cache.losses import LOSSES

    if not isinstance(cfg.student, str) or not cfg.student:
        raise ConfigError(f"--student must name an architecture, got {cfg.student!r}")
    _architecture(cfg.student, "--student")
    if cfg.online_teacher is not None:
        _architecture(cfg.online_teacher, "--online-teacher")
    loss = LOSSES.get(cfg.loss)
    cfg.loss_config()
    if cfg.cache is None and cfg.dataset is None:
        raise ConfigError("give --cache STORE (distillation) or --dataset SPEC (plain training)")
    if cfg.cache is None and loss.needs_teacher and cfg.online_teacher is None:
        raise ConfigError(f"--loss {cfg.loss} needs --cache STORE (or --online-teacher ARCH)")
    for key in ("topk", "sparse_tail"):
        if getattr(cfg, key) is not None and not loss.needs_teacher:
            raise ConfigError(
                f"{flag(key)} {getattr(cfg, key)} does nothing with --loss {cfg.loss}: "
                "it has no teacher term"
            )
    if cfg.dataset is not None:
        from sortkd_cache.datasets import parse_dataset_spec

        parse_dataset_spec(cfg.dataset)
    if cfg.augment is not None:
        from sortkd_cache.augment import get_recipe

        get_recipe(cfg.augment)


def _architecture(name: str, option: str) -> None:
    import difflib

    from sortkd_cache.models import list_models, model_exists

    if not model_exists(name):
        close = difflib.get_close_matches(name, list_models(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown {option} architecture {name!r}{hint}; known: {', '.join(list_models())} "
            "(plus torchvision classification models)"
        )


def resume_difference(stored: Mapping[str, Any], cfg: TrainConfig) -> str | None:
    """The first option (in declaration order) where ``cfg`` differs from a stored run's
    ``config.json``, as one line; None when a resume may continue that run."""
    import json

    now = cfg.to_dict()
    for f in fields(TrainConfig):
        if f.name in RUNTIME_KEYS:
            continue
        old, new = stored.get(f.name), now.get(f.name)
        if f.name == "loss_options" and isinstance(old, dict) and isinstance(new, dict):
            for key in sorted(set(old) | set(new)):
                if old.get(key) != new.get(key):
                    return f"{flag(key)} {json.dumps(old.get(key))} -> {json.dumps(new.get(key))}"
        elif old != new:
            return f"{flag(f.name)} {json.dumps(old)} -> {json.dumps(new)}"
    return None
