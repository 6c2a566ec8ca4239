"""One student being trained: model, optimizer, schedule, loss, temperature, random state.

A :class:`Member` is built whole from a :class:`MemberSpec` (the model initialised from its
seed, exactly as a solo run makes it) and owns everything that changes while it trains. Its
step leaves every value on the device: the loss, its parts and the correct count accumulate in
:class:`EpochSums`, the divergence flag in its :class:`~sortkd_cache.training._guard.Guard`;
:meth:`Member.record` hands them over as one float64 tensor for the once-an-epoch read.

The optimizer and the schedule come from the spec's factories (:meth:`Member.make_optimizer`
is the one place an optimizer is built), so a registry of optimizers plugs in there.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch.nn.parallel import DistributedDataParallel

from sortkd_cache.losses import loss_terms
from sortkd_cache.models import create_model
from sortkd_cache.training._amp import Amp
from sortkd_cache.training._guard import Failure, Guard, Snapshot
from sortkd_cache.training._precision import Precision

if TYPE_CHECKING:
    from sortkd_cache.data import Batch
    from sortkd_cache.losses import CTKDTemperature, Loss, TeacherRows
    from sortkd_cache.world import World

__all__ = [
    "EpochStats",
    "EpochSums",
    "Member",
    "MemberSpec",
    "OptimizerFactory",
    "ScheduleFactory",
]

#: ``params -> optimizer`` (e.g. ``lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)``)
OptimizerFactory = Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer]
#: ``optimizer -> lr schedule``, stepped once an epoch
ScheduleFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]


@dataclass(frozen=True)
class MemberSpec:
    """What a member is made of (a run's or a sweep member's configuration, resolved)."""

    name: str
    student: str
    num_classes: int
    channels: int
    #: the seed of the model's initialisation
    seed: int
    loss: Loss
    optimizer: OptimizerFactory
    schedule: ScheduleFactory
    #: which soft-label source it reads (a key of the epoch loop's sources), None for none
    source: Hashable | None = None
    #: a sparse teacher's tail handling (None: dense or none)
    tail: str | None = None
    #: how its forward computes (precision, channels-last, compile; see :class:`Amp`)
    precision: Precision = field(default_factory=Precision)


@dataclass(frozen=True)
class EpochStats:
    """A member's epoch as read on the host (sums over this rank's, or every rank's, steps)."""

    loss: float
    parts: dict[str, float]
    correct: float
    n: float
    step_losses: list[float]
    failure: Failure | None


class EpochSums:
    """A member's running sums of an epoch, on the device (float64, like the host sums of
    old: a step adds ``loss * b`` and each part times ``b``; the correct count as an integer;
    the samples ``n`` are known on the host)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.terms: torch.Tensor | None = None  # [loss, *parts] * b, summed
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.n = 0
        self.names: tuple[str, ...] = ()
        self.losses: list[torch.Tensor] = []

    def add(self, loss: torch.Tensor, parts: Mapping[str, torch.Tensor], correct: torch.Tensor,
            b: int) -> None:  # fmt: skip
        value = loss.detach()
        self.losses.append(value)
        step = torch.stack([value, *(p.detach() for p in parts.values())]).double() * float(b)
        if self.terms is None:
            self.names, self.terms = tuple(parts), step
        else:
            self.terms += step
        self.correct += correct
        self.n += b

    def summed(self) -> torch.Tensor:
        """What the ranks add up: ``[loss, correct, n, *parts]``."""
        terms = self.terms
        if terms is None:
            terms = torch.zeros(1, dtype=torch.float64, device=self.device)
        counts = torch.stack([self.correct.double(), torch.full_like(terms[0], float(self.n))])
        return torch.cat([terms[:1], counts, terms[1:]])

    def steps(self) -> torch.Tensor:
        """This rank's step losses, float64."""
        if not self.losses:
            return torch.zeros(0, dtype=torch.float64, device=self.device)
        return torch.stack(self.losses).double()


class Member:
    """One student in training (see the module docstring)."""

    def __init__(self, spec: MemberSpec, device: torch.device) -> None:
        self.spec, self.name, self.loss, self.device = spec, spec.name, spec.loss, device
        torch.manual_seed(spec.seed)
        self.model = create_model(spec.student, spec.num_classes, spec.channels)
        self.temperature: CTKDTemperature | None = self.loss.make_temperature_module(device)
        self.model.to(device)
        #: the step in the spec's precision (autocast, gradient scaler, memory format)
        self.amp = Amp(spec.precision, device)
        self.amp.prepare(self.model)
        self.optimizer = self.make_optimizer()
        self.schedule = spec.schedule(self.optimizer)
        #: the member's own random stream (what its solo run draws), kept between its steps
        self.rng = _rng_state(device)
        #: what runs the forward: the model, or DistributedDataParallel around it
        self.net: torch.nn.Module = self.model
        self.guard = Guard(device)
        self.sums = EpochSums(device)
        #: the rate the current (or last) epoch trains at: read when it begins, before the
        #: schedule's epoch step at its end (a Python float: no device read)
        self.epoch_lr = self.lr
        #: the reason it stopped (its loss diverged), None while it trains
        self.failed: str | None = None
        self._tensors: list[torch.Tensor] | None = None

    # -- building ------------------------------------------------------------------------
    def params(self) -> list[torch.nn.Parameter]:
        """Everything the optimizer steps: the model's parameters, then the temperature's."""
        params = list(self.model.parameters())
        if self.temperature is not None:
            params += list(self.temperature.parameters())
        return params

    def make_optimizer(self) -> torch.optim.Optimizer:
        """The member's optimizer over :meth:`params` (the one place it is built)."""
        return self.spec.optimizer(self.params())

    def distribute(self, world: World, *, ddp: bool = True) -> None:
        """Under several ranks, run the forward through DistributedDataParallel (``ddp``;
        on CUDA with BatchNorm as SyncBatchNorm, statistics over the global batch). On CPU
        (gloo) each rank normalises with its own part of the batch. A stacked member is
        left unwrapped (``ddp=False``): its stepper averages the gradients itself."""
        if not world.distributed or not ddp:
            return
        self._tensors = None  # SyncBatchNorm brings new buffers
        if self.device.type == "cuda":
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)  # type: ignore[no-untyped-call]
            self.net = DistributedDataParallel(self.model, device_ids=[self.device.index or 0])
        else:
            self.net = DistributedDataParallel(self.model)

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Model, optimizer, schedule (and temperature) state, for a checkpoint."""
        state: dict[str, Any] = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
        }
        if self.temperature is not None:
            state["temperature"] = self.temperature.state_dict()
        if self.amp.scaler is not None:
            state["scaler"] = self.amp.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
        self.amp.load_state_dict(state.get("scaler", {}))
        if self.temperature is not None and "temperature" in state:
            self.temperature.load_state_dict(state["temperature"])

    def tensors(self) -> list[torch.Tensor]:
        """What a step may change: parameters (with the temperature's) and buffers."""
        if self._tensors is None:
            self._tensors = [*self.params(), *self.model.buffers()]
        return self._tensors

    @contextmanager
    def random_state(self) -> Iterator[None]:
        """Run in the member's own random stream (and keep where it got to)."""
        _set_rng_state(self.rng, self.device)
        try:
            yield
        finally:
            self.rng = _rng_state(self.device)

    # -- the step ---------------------------------------------------------------------------
    def begin_epoch(self) -> None:
        self.guard.begin_epoch()  # its reference is taken again on the epoch's first batch
        self.sums = EpochSums(self.device)
        self.epoch_lr = self.lr

    def loss_of(
        self, out: torch.Tensor, batch: Batch, soft: torch.Tensor | TeacherRows | None, epoch: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss of logits ``out`` on ``batch`` at epoch ``epoch`` (0-based), added to the
        epoch's sums; and whether it passes the divergence rule (a bool tensor)."""
        kw = {"epoch": epoch + 1, "temperature_module": self.temperature, "tail": self.spec.tail}
        loss, parts = loss_terms(self.loss, out, soft, batch.y, **kw)  # type: ignore[arg-type]
        if not self.guard.has_reference:  # the epoch's first batch
            with torch.no_grad():
                zeros = torch.zeros_like(out.detach())
                self.guard.set_reference(loss_terms(self.loss, zeros, soft, batch.y, **kw)[0])  # type: ignore[arg-type]
        correct = (out.detach().argmax(1) == batch.y).sum()
        self.sums.add(loss, parts, correct, int(batch.y.shape[0]))
        return loss, self.guard.sane(loss)

    def snapshot(self) -> Snapshot:
        """The member's tensors before a step's forward (see :meth:`step`)."""
        return Snapshot(self.tensors())

    def step(self, agreed: torch.Tensor, saved: Snapshot) -> None:
        """The optimizer step, kept only where the member is alive and every rank's loss
        was sane (else ``saved``, taken before the forward, is put back)."""
        self.amp.step(self.optimizer)
        saved.restore_unless(self.guard.settle(agreed))

    def end_epoch(self) -> None:
        """The schedule's epoch step."""
        self.schedule.step()

    def record(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(what ranks sum, what stays this rank's): the epoch's values as float64 tensors."""
        return self.sums.summed(), torch.cat([self.guard.record(), self.sums.steps()])

    def stats(self, summed: Sequence[float], local: Sequence[float]) -> EpochStats:
        """The host's :class:`EpochStats` from :meth:`record`'s values (after any reduce)."""
        loss, correct, n, *parts = summed
        width = Guard.WIDTH
        step_losses = list(local[width:])
        return EpochStats(
            loss=loss,
            parts=dict(zip(self.sums.names, parts, strict=True)),
            correct=correct,
            n=n,
            step_losses=step_losses,
            failure=Guard.failure_of(list(local[:width]), step_losses),
        )

    def fail(self, reason: str) -> None:
        """Mark the member failed (its guard already keeps it from stepping): the first
        reason stays."""
        if self.failed is None:
            self.failed = reason

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])


def draws_random_numbers(model: torch.nn.Module) -> str | None:
    """The first module of ``model`` that draws random numbers in training (dropout with
    p > 0, stochastic depth), by its type name; None when none does."""
    for module in model.modules():
        p = getattr(module, "p", None)
        if isinstance(module, torch.nn.modules.dropout._DropoutNd) and p:
            return type(module).__name__
        drop = getattr(module, "drop_prob", None) or getattr(module, "drop_rate", None)
        if "drop" in type(module).__name__.lower() and drop:
            return type(module).__name__
    return None


def _rng_state(device: torch.device) -> list[torch.Tensor]:
    states = [torch.get_rng_state()]
    if device.type == "cuda":
        states.append(torch.cuda.get_rng_state(device))
    return states


def _set_rng_state(states: list[torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(states[0])
    if device.type == "cuda" and len(states) > 1:
        torch.cuda.set_rng_state(states[1], device)
