"""The sections :class:`~sortkd_cache.pipelines.configs.TrainConfig` is built from.

Each section is a group of the run's options (see :class:`sortkd_cache.options.Section`):
its fields generate the ``train`` command's options, the recipe keys and ``config.json``,
which all stay flat (``--lr``, ``"lr": 0.05``). A section says how a sweep's members take its
options (``sweep=``, :data:`~sortkd_cache.options.SWEEP_ROLES`); a field that differs from its
section says so itself. ``hashed=True`` marks the keys a recipe stage has recorded since
recipes began (frozen: a new option is hashed only when set). Adding an option is one field in
one section.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from sortkd_cache.choices import DATA_PATHS, SEED_MAX, SOFT_LABEL_MODES, TEACHER_INITS
from sortkd_cache.losses import LOSSES
from sortkd_cache.options import Section, Spell, flag, inherit, opt, storage_opt
from sortkd_cache.pipelines.train._tensorboard import LOG_CHOICES
from sortkd_cache.runtime import threads_opt
from sortkd_cache.sorting import LOGIT_KINDS
from sortkd_cache.sparse import SAMPLED_TAILS, TAILS
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
    from sortkd_cache.training import LRSchedule, Optimizer

__all__ = [
    "LOGIT_CHOICES",
    "SEED_MAX",
    "Data",
    "Output",
    "Runtime",
    "Schedule",
    "Streaming",
    "Student",
    "TeacherRows",
]

#: ``raw`` and every registered logits transform (``sort``, ``swap``).
LOGIT_CHOICES: Sequence[str] = LOGIT_KINDS  # read from the registry when asked
VIEW_ORDERS = ("cyclic", "shuffle")


def _losses() -> tuple[str, ...]:
    return tuple(LOSSES.names())


def _optimizers() -> tuple[str, ...]:
    return tuple(OPTIMIZERS.names())


def _schedules() -> tuple[str, ...]:
    return tuple(SCHEDULES.names())


@dataclass(frozen=True, kw_only=True)
class Schedule(Section, section="schedule", sweep="member"):
    """How a model is optimised: the optimizer, the lr and its schedule.

    Defaults: the paper's CIFAR-100 setup (mdistiller): SGD with momentum, the lr decayed at
    milestones. The optimizers' and the schedules' options are declared by each registered
    component (:mod:`sortkd_cache.training`) and taken here flat; an option that the chosen
    optimizer or schedule does not take is refused when set (``check_schedule``). The
    train stage, a recipe's teacher and its student variants all take these fields from here.
    A sweep's members share the epochs and the batch size (one pass over the data), each has
    its own optimizer and lr.
    """

    epochs: int = opt(240, "Training epochs.", ge=1, le=100_000, recipe=True, sweep="shared",
                      hashed=True)  # fmt: skip
    batch_size: int = opt(64, "Samples per optimizer step.", ge=2, le=2**20, recipe=True,
                          sweep="shared", hashed=True)  # fmt: skip
    optimizer: str = opt("sgd", "The optimizer.", choices=_optimizers, recipe=True)
    lr: float = opt(0.05, "Learning rate (the schedule's base).", gt=0, le=100.0, recipe=True,
                    hashed=True)  # fmt: skip
    momentum: float = inherit(SGD, "momentum", hashed=True)
    nesterov: bool = inherit(SGD, "nesterov")
    weight_decay: float = inherit(SGD, "weight_decay", hashed=True)
    adam_beta1: float = inherit(AdamW, "adam_beta1")
    adam_beta2: float = inherit(AdamW, "adam_beta2")
    adam_eps: float = inherit(AdamW, "adam_eps")
    schedule: str = opt("multistep", "The lr schedule (stepped once per epoch).",
                        choices=_schedules, recipe=True)  # fmt: skip
    warmup_epochs: int = inherit(MultiStep, "warmup_epochs")
    milestones: tuple[int, ...] = inherit(MultiStep, "milestones", hashed=True)
    lr_decay: float = inherit(MultiStep, "lr_decay", hashed=True)
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
class Student(Section, section="student", sweep="grid"):
    """What is trained and how: the architecture, its seed, the loss and the loss's options
    (a sweep's grid crosses the first three)."""

    student: str = opt(help="Student architecture (names: sortkd-cache list models).",
                       recipe=True, hashed=True)  # fmt: skip
    loss: str = opt("kd", "The loss.", choices=_losses, recipe=True, hashed=True)
    #: The loss's own options (``{"temperature": 2.0}``); the rest take the loss's defaults.
    loss_options: Mapping[str, float] = opt(default_factory=dict, cli=False, sweep="member")
    seed: int = opt(0, "Seed of the student's initialisation (and, unless --data-seed, of "
                    "the data order).", ge=0, le=SEED_MAX)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Data(Section, section="data", sweep="shared"):
    """Where the samples come from and in which order (one pass over the data serves a sweep:
    its members share these)."""

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
    data_seed: int | None = opt(
        None,
        "Seed of the data order and the view order (shuffles, --views-order shuffle, fresh "
        "views without a cache). [default: --seed]",
        ge=0, le=SEED_MAX, fallback="seed", recipe=True,
    )  # fmt: skip
    augment: str | None = opt(None, "Recipe for plain training (default: the dataset's; names: "
                              "sortkd-cache list augment).", applies="no_cache",
                              sweep="solo")  # fmt: skip
    views_order: str = opt("cyclic", "cyclic (epoch mod V) | shuffle", choices=VIEW_ORDERS,
                           recipe=True, hashed=True)  # fmt: skip
    num_classes: int | None = opt(None, "Expected class count (checked against the store).",
                                  ge=1, le=2**24)  # fmt: skip
    storage_options: dict[str, Any] | None = storage_opt()  # noqa: RUF009
    #: ``train --config`` without ``--cache``: the recorded run's cache provenance, which the
    #: store found now must match (not recorded: a replay's own config.json has its provenance)
    replay_of: Mapping[str, Any] | None = opt(None, runtime=True, cli=False, sweep="solo")


@dataclass(frozen=True, kw_only=True)
class TeacherRows(Section, section="teacher rows", sweep="teacher"):
    """The teacher's soft labels: which kind, cut how, or computed by an online teacher (a
    sweep's member without a teacher term leaves them at their defaults)."""

    logits: str = opt("raw", "Soft labels: raw or a sort method's kind.", choices=LOGIT_CHOICES,
                      applies="teacher", recipe=True, sweep="grid", hashed=True)  # fmt: skip
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
    quantize: int | None = opt(
        None,
        "Quantized soft labels from a dense store: each batch's teacher rows become B-bit "
        "codes (2..8) read back as logits, as `copy --quantize B` stores them (the same "
        "values), so the run equals one from that copy. Every loss.",
        applies="teacher", recipe=True,
    )  # fmt: skip
    sparse_tail: str | None = opt(
        None,
        "How the classes a sparse teacher row does not name enter the loss. Top-K rows: "
        "uniform, the dropped mass spread evenly over them; bucket, its total only (inside it "
        "the student keeps its own spread). Sampled rows: student, the student's own "
        "probabilities corrected at the drawn classes (unbiased, less noise); counts, the "
        "draws' counts as the target (unbiased). [default: uniform for top-K, student for "
        "sampled; only with a sparse store, --topk or --sample]",
        choices=(*TAILS, *SAMPLED_TAILS), applies="teacher", recipe=True,
    )  # fmt: skip
    online_teacher: str | None = opt(
        None, "Compute teacher logits on the fly (equality checks, timing).", sweep="solo"
    )
    teacher_ckpt: str | None = opt(None, "Weights of --online-teacher.", applies="online_teacher",
                                   sweep="solo")  # fmt: skip
    teacher_init: str = opt("checkpoint", "Weights of --online-teacher: checkpoint | random.",
                            choices=TEACHER_INITS, applies="online_teacher",
                            sweep="solo")  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Streaming(Section, section="streaming", sweep="readers"):
    """How soft labels are read: a whole view per epoch, or streamed chunk by chunk (the
    members of a sweep that read soft labels read them in one way)."""

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


@dataclass(frozen=True, kw_only=True)
class Runtime(Section, section="runtime", sweep="shared"):
    """Where and how the run computes: the device, the batches' path, the model's compute
    switches, threads (a sweep's members share the device and the batches)."""

    device: str = opt("auto", "auto | cpu | cuda[:N]", runtime=True)
    precision: str = inherit(Precision, "precision", sweep="member")
    channels_last: bool = inherit(Precision, "channels_last", sweep="member")
    compile: bool = inherit(Precision, "compile", sweep="member")
    data_path: str = opt(
        "auto",
        "Where batches are made: device (the in-memory split replayed on the training "
        "device), loader (a DataLoader); auto takes device when the split is in memory and, "
        "on CUDA, under 30% of free memory.",
        choices=DATA_PATHS,
        runtime=True,
    )
    workers: int = opt(0, "DataLoader workers (loader path).", ge=0, le=256, runtime=True)
    threads: int | None = threads_opt(sweep="member")
    eval_batch_size: int = opt(512, "Batch size of the evaluation.", ge=1, le=2**20, runtime=True)


@dataclass(frozen=True, kw_only=True)
class Output(Section, section="output", sweep="sweep"):
    """Where the run writes, what it does with a run already there, and what it reports (a
    sweep sets the directory, the resume and the progress of its members)."""

    out: str = opt(help="Run directory.", runtime=True)
    resume: bool = opt(False, "Continue an interrupted run in --out.", runtime=True)
    overwrite: bool = opt(False, "Replace a run already in --out.", runtime=True)
    stop_after: int | None = opt(None, ge=1, runtime=True, hidden=True, sweep="shared")
    progress: bool = opt(True, "Progress bar.", runtime=True, names=("--progress/--no-progress",))
    log: str | None = opt(
        None,
        "Also log to TensorBoard: RUN_DIR/tensorboard/ holds the epoch scalars, the step loss "
        "every --log-every steps and the configuration (needs the extra [tensorboard]).",
        choices=LOG_CHOICES, runtime=True, sweep="member",
    )  # fmt: skip
    log_every: int = opt(50, "With --log: the training loss of every N-th step.", ge=1,
                         le=2**31 - 1, runtime=True, applies="log", sweep="member")  # fmt: skip
