"""A sweep's grid: its members (one :class:`TrainConfig` each), validated whole up front.

:func:`grid` crosses students x losses x logits kinds x seeds over one set of train options
(``ce`` reads no soft labels: one member per student and seed, whatever the kinds). Every
member is a complete ``train`` configuration whose ``out`` is ``SWEEP_DIR/<member name>``;
:class:`SweepConfig` refuses, naming the member, a bad member (an unknown loss, an option its
loss does not take), a duplicate, and an option that differs between members where one pass
over the data cannot serve both (:data:`SHARED_KEYS`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from sortkd_cache.errors import ConfigError
from sortkd_cache.losses import LOSSES
from sortkd_cache.options import check_fields, cli_spell, field_names, flag, opt
from sortkd_cache.pipelines.train import TrainConfig

__all__ = [
    "SHARED_KEYS",
    "STACK_MODES",
    "MemberSpec",
    "SweepConfig",
    "SweepGrid",
    "grid",
    "member_name",
]

STACK_MODES = ("auto", "on", "off")
#: Options every member of one sweep shares: they decide the one pass over the data (the
#: store, the order and views of every epoch, the batches, where they are made) or the loop.
#: Each is declared so where it is declared (``sweep="shared"``; see
#: :data:`~sortkd_cache.options.SWEEP_ROLES`), as every list below.
SHARED_KEYS = field_names(TrainConfig, sweep="shared")
#: Options of how soft labels are read: the members that read them share one value.
READER_KEYS = field_names(TrainConfig, sweep="readers")
#: Options of the teacher's soft labels: a member whose loss has no teacher term (``ce``)
#: leaves them at their defaults (its solo run refuses them).
TEACHER_KEYS = (*READER_KEYS, *field_names(TrainConfig, sweep="teacher"))
#: Options a sweep sets for all its members itself.
SWEEP_KEYS = field_names(TrainConfig, sweep="sweep")


@dataclass(frozen=True)
class MemberSpec:
    """One member: its name (its run directory inside the sweep's) and its configuration."""

    name: str
    cfg: TrainConfig


def member_name(student: str, loss: str, logits: str, seed: int) -> str:
    """``<student>-<loss>[-<logits>]-s<seed>``; characters other than ``[A-Za-z0-9_.]`` of a
    student's name become ``_``."""
    arch = re.sub(r"[^A-Za-z0-9_.]", "_", student)
    kind = "" if loss == "ce" else f"-{logits}"
    return f"{arch}-{loss}{kind}-s{seed}"


def _split(values: Iterable[str]) -> list[str]:
    return [v.strip() for value in values for v in str(value).split(",") if v.strip()]


def grid(
    options: Mapping[str, Any],
    *,
    out: str,
    students: Sequence[str],
    losses: Sequence[str],
    logits: Sequence[str],
    seeds: Sequence[int],
) -> tuple[MemberSpec, ...]:
    """Members crossing ``students`` x ``losses`` x ``logits`` x ``seeds`` (comma-separated
    values are split); ``options``: train options every member takes (``loss_options``
    included: each must apply to each member's loss). The data seed defaults to 0."""
    students, losses, kinds = _split(students), _split(losses), _split(logits)
    for what, values in (("--student", students), ("--loss", losses), ("--seeds", seeds)):
        if not values:
            raise ConfigError(f"sweep: give at least one {what}")
    if not kinds:
        kinds = ["raw"]
    base = {k: v for k, v in options.items() if k not in SWEEP_KEYS}
    base.setdefault("data_seed", 0)
    _check_teacher_options(base, losses)
    members: list[MemberSpec] = []
    for student in students:
        for loss in losses:
            for kind in kinds if loss != "ce" else ["raw"]:
                for seed in seeds:
                    name = member_name(student, loss, kind, int(seed))
                    fields = {"student": student, "loss": loss, "logits": kind, "seed": seed}
                    members.append(MemberSpec(name, _member_config(name, out, base, fields)))
    return tuple(members)


def _check_teacher_options(base: Mapping[str, Any], losses: Sequence[str]) -> None:
    """Refuse a soft-label option (``--topk``, ``--soft-labels``, ...) when no member reads
    soft labels: it would do nothing."""
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    given = [k for k in TEACHER_KEYS if base.get(k) not in (None, defaults[k])]
    if given and not any(_has_teacher(loss) for loss in losses):
        raise ConfigError(
            f"{flag(given[0])} does nothing in this sweep: no member reads soft labels "
            f"(--loss {','.join(losses)}); drop it or add a loss with a teacher term"
        )


def _member_config(
    name: str, out: str, base: Mapping[str, Any], fields: Mapping[str, Any]
) -> TrainConfig:
    """One member's TrainConfig; any refusal becomes ``member '<name>': <why>``."""
    data = {**base, **fields, "out": str(Path(out) / name), "progress": False}
    if not _has_teacher(str(fields["loss"])):
        data = {k: v for k, v in data.items() if k not in TEACHER_KEYS}
    try:
        return TrainConfig.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"member '{name}': {exc}") from None


def _has_teacher(loss: str) -> bool:
    try:
        return bool(LOSSES.get(loss).needs_teacher)
    except ConfigError:
        return True  # an unknown loss: TrainConfig names it


@dataclass(frozen=True, kw_only=True)
class SweepGrid:
    """The grid of ``sweep``'s command line (its own options, generated from these fields):
    students x losses x logits kinds x seeds over one store and one data order. Every other
    option of ``sweep`` is a ``train`` option each member takes (the ``TrainConfig`` fields
    whose sweep role is ``member``, ``shared``, ``readers`` or ``teacher``)."""

    cache: str = opt(help="Store every member trains from.", required=True)
    students: tuple[str, ...] = opt(help="Repeatable.", names=("--student",), multiple=True,
                                    required=True)  # fmt: skip
    losses: str = opt("kd", "Comma-separated.", names=("--loss",))
    kinds: str = opt("raw", "Comma-separated.", names=("--logits",))
    seeds: tuple[int, ...] = opt((0,), "Init seeds.")
    data_seed: int | None = opt(
        None, "Seed of the data and view order, shared by all members. [default: 0]"
    )

    def __post_init__(self) -> None:
        check_fields(self, cli_spell(SweepGrid))


@dataclass(frozen=True, kw_only=True)
class SweepConfig:
    """A sweep: its members, where it writes, how members are stepped (``stack``).

    A member's run directory is usually ``out/<name>`` (:func:`grid`); any other path of its
    own works too (``run RECIPE`` keeps its students in OUT/students/). ``resume`` resumes
    every member; a member's own ``resume``/``overwrite`` are kept otherwise."""

    out: str = opt(help="Sweep directory: DIR/<member>/ per member.", required=True)
    members: tuple[MemberSpec, ...] = opt(cli=False)
    stack: str = opt(
        "auto",
        "on: members of one architecture step as one stacked model (torch.func; each with "
        "its own torch.optim optimizer; refused for a member that draws random numbers or has "
        "SyncBatchNorm); off: one after another (each bit-identical to its solo run); auto: "
        "stacks nothing until a GPU run shows a gain (on the CPU stacking measured no faster).",
        choices=STACK_MODES,
    )
    resume: bool = opt(False, "Continue an interrupted sweep in --out.")
    overwrite: bool = opt(False, "Replace a sweep already in --out.")
    progress: bool = opt(True, names=("--no-progress",))

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", tuple(self.members))
        check_fields(self)
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite exclude each other")
        if not self.members:
            raise ConfigError("sweep: no members")
        _check_members(self)
        object.__setattr__(
            self,
            "members",
            tuple(
                MemberSpec(m.name, replace(m.cfg, resume=m.cfg.resume or self.resume))
                for m in self.members
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": self.out,
            "stack": self.stack,
            "members": [{"name": m.name, "config": m.cfg.to_dict()} for m in self.members],
        }


def _check_members(cfg: SweepConfig) -> None:
    seen: set[str] = set()
    outs: set[Path] = set()
    first = cfg.members[0]
    for m in cfg.members:
        if not re.fullmatch(r"[A-Za-z0-9_.][A-Za-z0-9_.-]*", m.name) or m.name in (".", ".."):
            raise ConfigError(f"member '{m.name}': not a usable directory name")
        if m.name in seen:
            raise ConfigError(f"member '{m.name}': duplicate member (the same grid point twice)")
        seen.add(m.name)
        if Path(m.cfg.out) in outs or Path(m.cfg.out) == Path(cfg.out):
            raise ConfigError(f"member '{m.name}': its run directory is another member's")
        outs.add(Path(m.cfg.out))
        if m.cfg.cache is None:
            raise ConfigError(f"member '{m.name}': a sweep trains from a --cache")
        if m.cfg.online_teacher is not None:
            raise ConfigError(
                f"member '{m.name}': --online-teacher does not apply to a sweep (it trains "
                "from the cache; use train --online-teacher for one run)"
            )
        _check_shared(m, first, SHARED_KEYS)
    readers = [m for m in cfg.members if m.cfg.loss_config().needs_teacher]
    for m in readers:
        _check_shared(m, readers[0], READER_KEYS)


def _check_shared(m: MemberSpec, first: MemberSpec, keys: Iterable[str]) -> None:
    for key in keys:
        mine, theirs = _shared(m.cfg, key), _shared(first.cfg, key)
        if mine != theirs:
            raise ConfigError(
                f"member '{m.name}': {flag(key)} {mine!r} differs from member "
                f"'{first.name}' ({theirs!r}); one pass over the data serves one value"
            )


def _shared(cfg: TrainConfig, key: str) -> Any:
    return cfg.order_seed if key == "data_seed" else getattr(cfg, key)
