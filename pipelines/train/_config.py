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
from sortkd_cache.choices import DATA_PATHS, SOFT_LABEL_MODES, TEACHER_INITS
from sortkd_cache.errors import ConfigError, ModelError
from sortkd_cache.losses import LOSSES, make_loss
from sortkd_cache.models import MODELS
from sortkd_cache.options import (
    Applies,
    Spell,
    check_applies,
    check_fields,
    flag,
    inherit,
    named,
    opt,
    opt_of,
)
from sortkd_cache.pipelines.train._tensorboard import LOG_CHOICES, check_log
from sortkd_cache.runtime import MAX_THREADS
from sortkd_cache.sorting import LOGIT_KINDS
from sortkd_cache.sparse import TAILS
from sortkd_cache.training import (
    OPTIMIZERS,
    SCHEDULES,
    SGD,
    AdamW,
    Cosine,
    MultiStep,
    Precision,
    make_optimizer,
    make_schedule,
)

if TYPE_CHECKING:
    from sortkd_cache.losses import Loss
    from sortkd_cache.training import LRSchedule, Optimizer

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

#: ``raw`` and every registered logits transform (``sort``, ``swap``).
LOGIT_CHOICES: Sequence[str] = LOGIT_KINDS  # read from the registry when asked
VIEW_ORDERS = ("cyclic", "shuffle")
#: Seeds are 32-bit: every generator that takes one (torch, numpy, the view sampler) agrees.
SEED_MAX = 2**32 - 1


def _losses() -> tuple[str, ...]:
    return tuple(LOSSES.names())


def _optimizers() -> tuple[str, ...]:
    return tuple(OPTIMIZERS.names())


def _schedules() -> tuple[str, ...]:
    return tuple(SCHEDULES.names())


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """How a model is optimised: the optimizer, the lr and its schedule.

    Defaults: the paper's CIFAR-100 setup (mdistiller): SGD with momentum, the lr decayed at
    milestones. The optimizers' and the schedules' options are declared by each registered
    component (:mod:`sortkd_cache.training`) and taken here flat; an option that the chosen
    optimizer or schedule does not take is refused when set (:func:`check_schedule`). The
    train stage, a recipe's teacher and its student variants all take these fields from here.
    """

    epochs: int = opt(240, "Training epochs.", ge=1, le=100_000, recipe=True)
    batch_size: int = opt(64, "Samples per optimizer step.", ge=2, le=2**20, recipe=True)
    optimizer: str = opt("sgd", "The optimizer.", choices=_optimizers, recipe=True)
    lr: float = opt(0.05, "Learning rate (the schedule's base).", gt=0, le=100.0, recipe=True)
    momentum: float = inherit(SGD, "momentum")
    nesterov: bool = inherit(SGD, "nesterov")
    weight_decay: float = inherit(SGD, "weight_decay")
    adam_beta1: float = inherit(AdamW, "adam_beta1")
    adam_beta2: float = inherit(AdamW, "adam_beta2")
    adam_eps: float = inherit(AdamW, "adam_eps")
    schedule: str = opt("multistep", "The lr schedule (stepped once per epoch).",
                        choices=_schedules, recipe=True)  # fmt: skip
    warmup_epochs: int = inherit(MultiStep, "warmup_epochs")
    milestones: tuple[int, ...] = inherit(MultiStep, "milestones")
    lr_decay: float = inherit(MultiStep, "lr_decay")
    min_lr: float = inherit(Cosine, "min_lr")

    def schedule_options(self) -> dict[str, Any]:
        """The schedule's fields (``TrainConfig`` keyword arguments)."""
        return {f.name: getattr(self, f.name) for f in fields(Schedule)}

    def optimizer_config(self, spell: Spell = flag) -> Optimizer:
        """The chosen optimizer with its options (:data:`~sortkd_cache.training.OPTIMIZERS`)."""
        return make_optimizer(self.schedule_options(), spell)

    def schedule_config(self, spell: Spell = flag) -> LRSchedule:
        """The chosen lr schedule with its options (:data:`~sortkd_cache.training.SCHEDULES`)."""
        return make_schedule(self.schedule_options(), self.epochs, spell)


@dataclass(frozen=True, kw_only=True)
class TrainConfig(Schedule):
    """One training run (see ``sortkd-cache train --help`` for each option).

    ``spell`` (not a field) names an option the way the caller's user wrote it in errors.
    """

    student: str = opt(help="Student architecture (names: sortkd-cache list models).", recipe=True)
    out: str = opt(help="Run directory.", runtime=True)
    cache: str | None = opt(None, "Store to train from (dir, .zip, s3://, gs://, https://).",
                            runtime=True)  # fmt: skip
    dataset: str | None = opt(
        None,
        "Dataset SPEC: without --cache, plain CE training; with it, your copy of the data "
        "(fingerprint-checked). Kinds: sortkd-cache list datasets.",
        runtime=True,
    )
    data_root: str | None = opt(None, "Where cifar10/cifar100 live.", runtime=True)
    download: bool = opt(False, "Let torchvision download cifar10/cifar100.", runtime=True)
    logits: str = opt("raw", "Soft labels: raw or a sort method's kind.", choices=LOGIT_CHOICES,
                      applies="teacher", recipe=True)  # fmt: skip
    topk: int | None = opt(
        None,
        "Top-K soft labels. A sparse store: must equal its K. A dense store or "
        "--online-teacher: each batch's teacher rows are truncated to the top K on the fly, as "
        "`copy --topk K` stores them (same format, recorded T 1,2,4), so the run equals one "
        "from that copy.",
        ge=1, le=2**16, applies="teacher", recipe=True,
    )  # fmt: skip
    sample: int | None = opt(
        None,
        "Sampled soft labels from a dense store: each batch's teacher rows become S draws "
        "from the teacher's softmax at T=4, as `copy --sample S` stores them (the same "
        "draws), so the run equals one from that copy. kd, dkd, lskd.",
        applies="teacher", recipe=True,
    )  # fmt: skip
    sample_head: int | None = opt(
        None,
        "With --sample: keep each row's top H classes exactly and draw the S from the rest, "
        "as `copy --sample S --sample-head H` stores them. [default: 0]",
        applies="sample", recipe=True,
    )  # fmt: skip
    sparse_tail: str | None = opt(
        None,
        "How a sparse teacher's dropped tail enters the loss. uniform: the mass spread evenly "
        "over the dropped classes; bucket: its total mass only (inside it the student keeps "
        "its own spread). [default: uniform; only with a sparse store or --topk]",
        choices=TAILS, applies="teacher", recipe=True,
    )  # fmt: skip
    loss: str = opt("kd", "The loss.", choices=_losses, recipe=True)
    #: The loss's own options (``{"temperature": 2.0}``); the rest take the loss's defaults.
    loss_options: Mapping[str, float] = opt(default_factory=dict, cli=False)
    seed: int = opt(0, "Seed of the student's initialisation (and, unless --data-seed, of "
                    "the data order).", ge=0, le=SEED_MAX)  # fmt: skip
    data_seed: int | None = opt(
        None,
        "Seed of the data order and the view order (shuffles, --views-order shuffle, fresh "
        "views without a cache). [default: --seed]",
        ge=0, le=SEED_MAX, fallback="seed", recipe=True,
    )  # fmt: skip
    augment: str | None = opt(None, "Recipe for plain training (default: the dataset's; names: "
                              "sortkd-cache list augment).", applies="no_cache")  # fmt: skip
    views_order: str = opt("cyclic", "cyclic (epoch mod V) | shuffle", choices=VIEW_ORDERS,
                           recipe=True)  # fmt: skip
    num_classes: int | None = opt(None, "Expected class count (checked against the store).",
                                  ge=1, le=2**24)  # fmt: skip
    online_teacher: str | None = opt(
        None, "Compute teacher logits on the fly (equality checks, timing)."
    )
    teacher_ckpt: str | None = opt(None, "Weights of --online-teacher.", applies="online_teacher")
    teacher_init: str = opt("checkpoint", "Weights of --online-teacher: checkpoint | random.",
                            choices=TEACHER_INITS, applies="online_teacher")  # fmt: skip
    device: str = opt("auto", "auto | cpu | cuda[:N]", runtime=True)
    precision: str = inherit(Precision, "precision")
    channels_last: bool = inherit(Precision, "channels_last")
    compile: bool = inherit(Precision, "compile")
    data_path: str = opt(
        "auto",
        "Where batches are made: device (the in-memory split replayed on the training "
        "device), loader (a DataLoader); auto takes device when the split is in memory and, "
        "on CUDA, under 30% of free memory.",
        choices=DATA_PATHS,
        runtime=True,
    )
    workers: int = opt(0, "DataLoader workers (loader path).", ge=0, le=256, runtime=True)
    threads: int | None = opt(
        None,
        "CPU threads: torch's intra- and inter-op threads and the BLAS pools (default: the "
        "cores of this process / the ranks on this node). Runtime: not part of the result.",
        ge=1, le=MAX_THREADS, runtime=True,
    )  # fmt: skip
    soft_labels: str = opt(
        "auto",
        "view: one whole view of soft labels per epoch | stream: chunk by chunk in a "
        "chunk-local shuffled order, memory bounded by the window | auto: stream once a view "
        "exceeds 64 MiB. Recorded in config.json.",
        choices=SOFT_LABEL_MODES,
    )
    stream_window: int | None = opt(
        None, "Streamed: chunks per shuffle window and lane (default 2).", ge=1, le=2**16
    )
    stream_lanes: int | None = opt(
        None,
        "Streamed: rank-independent lanes; ranks must divide them (default: the largest "
        "divisor of --batch-size up to 8).",
        ge=1, le=2**16,
    )  # fmt: skip
    eval_batch_size: int = opt(512, "Batch size of the evaluation.", ge=1, le=2**20, runtime=True)
    resume: bool = opt(False, "Continue an interrupted run in --out.", runtime=True)
    overwrite: bool = opt(False, "Replace a run already in --out.", runtime=True)
    stop_after: int | None = opt(None, ge=1, runtime=True, hidden=True)
    progress: bool = opt(True, "Progress bar.", runtime=True, names=("--progress/--no-progress",))
    log: str | None = opt(
        None,
        "Also log to TensorBoard: RUN_DIR/tensorboard/ holds the epoch scalars, the step loss "
        "every --log-every steps and the configuration (needs the extra [tensorboard]).",
        choices=LOG_CHOICES, runtime=True,
    )  # fmt: skip
    log_every: int = opt(50, "With --log: the training loss of every N-th step.", ge=1,
                         le=2**31 - 1, runtime=True, applies="log")  # fmt: skip
    storage_options: dict[str, Any] | None = opt(None, runtime=True, cli=False)  # noqa: RUF009
    #: ``train --config`` without ``--cache``: the recorded run's cache provenance, which the
    #: store found now must match (not recorded: a replay's own config.json has its provenance)
    replay_of: Mapping[str, Any] | None = opt(None, runtime=True, cli=False)
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
RUNTIME_KEYS = frozenset(f.name for f in fields(TrainConfig) if opt_of(f).runtime)


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
    return tuple(f.name for f in fields(TrainConfig) if opt_of(f).recipe)
