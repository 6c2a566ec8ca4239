"""The parts of a recipe (see :mod:`sortkd_cache.pipelines.recipes`): its dataset, teacher,
dump, sort and student variants. The ``[dump]`` and variant keys are not declared here: they
are the options that ``DumpConfig`` and ``TrainConfig`` mark as recipe keys."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sortkd_cache.options import field_names, inherit
from sortkd_cache.pipelines.configs import DumpConfig, Schedule, TrainConfig
from sortkd_cache.sorting import METHOD_NAMES
from sortkd_cache.sparse import DEFAULT_SAMPLED_TAIL

__all__ = [
    "SORT_METHODS",
    "DatasetSpec",
    "DumpSpec",
    "SortSpec",
    "StudentSpec",
    "TeacherSpec",
    "slugify",
]

SORT_METHODS: Sequence[str] = METHOD_NAMES  # read from the registry when asked


def _staged(values: Mapping[str, Any], cls: type) -> dict[str, Any]:
    """A stage's configuration: the keys ``cls`` marks ``hashed`` (recorded since recipes
    began), and every other key when not at its default, so that a key added later leaves the
    hash of an existing run's stages alone."""
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    keep = field_names(cls, hashed=True)
    return {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in values.items()
        if k in keep or v != defaults.get(k)
    }


@dataclass(frozen=True)
class DatasetSpec:
    spec: str
    data_root: str | None = None
    download: bool = False


@dataclass(frozen=True, kw_only=True)
class TeacherSpec(Schedule):
    """An existing ``checkpoint``, or CE training with the schedule and the other fields."""

    arch: str
    checkpoint: str | None = None
    seed: int = inherit(TrainConfig, "seed")
    augment: str | None = inherit(TrainConfig, "augment")


class _Values:
    """Attribute access to a spec's option values (``spec.lr`` is ``spec.values["lr"]``)."""

    values: Mapping[str, Any]

    def __getattr__(self, key: str) -> Any:
        try:
            return self.__dict__["values"][key]
        except KeyError:
            raise AttributeError(key) from None


@dataclass(frozen=True)
class DumpSpec(_Values):
    """The ``[dump]`` table: values of the :class:`~sortkd_cache.pipelines.configs.DumpConfig`
    options a recipe may set (each declared there, once), defaults filled in."""

    values: Mapping[str, Any]

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.values.items())))

    def config(self) -> dict[str, Any]:
        """The dump stage's configuration (hashed; see ``_staged``)."""
        return _staged(self.values, DumpConfig)


@dataclass(frozen=True)
class SortSpec:
    methods: tuple[str, ...] = ("sort",)


@dataclass(frozen=True, kw_only=True)
class StudentSpec(_Values):
    """One student variant: its name and seeds, the values of the
    :class:`~sortkd_cache.pipelines.configs.TrainConfig` options a recipe may set (each
    declared there, once; defaults filled in) and the loss's own options as given."""

    name: str
    seeds: tuple[int, ...] = (0,)
    values: Mapping[str, Any] = field(default_factory=dict)
    #: The loss's own options given by the recipe (the rest take the loss's defaults).
    loss_options: Mapping[str, float] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.name, self.seeds, self.loss, tuple(sorted(self.loss_options.items()))))

    @property
    def slug(self) -> str:
        return slugify(self.name)

    def train_params(self) -> dict[str, Any]:
        """The :class:`TrainConfig` fields of this variant (its stage configuration). A
        sampled student names its tail handling even at the default, so a run made when the
        default was ``counts`` is not taken as this one."""
        staged = _staged(self.values, TrainConfig)
        if staged.get("sample") is not None and staged.get("sparse_tail") is None:
            staged["sparse_tail"] = DEFAULT_SAMPLED_TAIL
        return {**staged, "loss_options": dict(self.loss_options)}

    def to_dict(self) -> dict[str, Any]:
        """The variant as recipe keys (its loss options flat, as a ``[[students]]`` table)."""
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in self.values.items()}
        return {"name": self.name, "seeds": list(self.seeds), **values, **self.loss_options}


def slugify(name: str) -> str:
    """A directory-safe form of a variant name: ``"KD sort"`` -> ``"kd-sort"``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
