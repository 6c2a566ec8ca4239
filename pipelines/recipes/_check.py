"""Validation of recipe data: every error names the file, the key and the value.

See :mod:`sortkd_cache.pipelines.recipes` for the schema. The ``[dump]`` keys and the variant
keys (``[train]``, ``[[students]]``) are the options that
:class:`~sortkd_cache.pipelines.configs.DumpConfig` and
:class:`~sortkd_cache.pipelines.configs.TrainConfig` mark as recipe keys, and they are checked
by those configurations themselves (types, bounds, choices, known architectures, losses and
datasets, options that would do nothing), with errors spelled as recipe keys. Then what only
a recipe knows: logits kinds the sort stage makes, ``topk`` against the dataset's classes.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from sortkd_cache.errors import ConfigError, SortKDError
from sortkd_cache.losses import LOSSES, loss_options, make_loss
from sortkd_cache.options import Spell, check_value, field_names
from sortkd_cache.pipelines import dump as dump_stage
from sortkd_cache.pipelines import train as train_stage
from sortkd_cache.pipelines.configs import DumpConfig, TrainConfig
from sortkd_cache.pipelines.recipes._specs import (
    SORT_METHODS,
    DatasetSpec,
    DumpSpec,
    SortSpec,
    StudentSpec,
    TeacherSpec,
)
from sortkd_cache.pipelines.train import check_schedule

__all__ = ["check_data", "check_recipe"]

_TEACHER_TRAIN_KEYS = tuple(
    f.name for f in dataclasses.fields(TeacherSpec) if f.name not in ("arch", "checkpoint")
)
#: The tables of a recipe, each checked by its own method below.
_TABLES = ("dataset", "teacher", "dump", "sort", "train", "students")
#: Placeholders of what the run decides itself (the store and run directories).
_STORE, _OUT = "<recipe store>", "<recipe run>"


class _Parser:
    def __init__(self, source: str, recipe_cls: type) -> None:
        self.source = source
        self.recipe_cls = recipe_cls
        self.per_loss: dict[str, dict[str, Any]] = {}
        self.classes: int | None = None

    def fail(self, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.source}: key '{key}' {msg}")

    def bad(self, key: str, value: Any, why: str) -> ConfigError:
        return self.fail(key, f"has bad value {value!r}: {why}")

    def checked(self, build: Callable[[], Any]) -> Any:
        """``build()``, its one-line error prefixed with the recipe's source."""
        try:
            return build()
        except SortKDError as exc:
            raise ConfigError(f"{self.source}: {str(exc).splitlines()[0]}") from None

    def table(self, key: str, value: Any) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            shown = type(value).__name__
            raise self.fail(key, f"expects a table, got {value!r} ({shown})")
        return value

    def check_keys(self, prefix: str, d: Mapping[str, Any], known: Sequence[str]) -> None:
        for key, value in d.items():
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(
                    f"{self.source}: unknown key '{prefix}{key}' = {value!r}{hint}; "
                    f"known: {', '.join(known)}"
                )

    def fields(
        self, cls: type, prefix: str, d: Mapping[str, Any], keys: Sequence[str]
    ) -> dict[str, Any]:
        """Type-checked values of ``keys`` present in ``d`` (missing required keys refused)."""
        by_name = {f.name: f for f in dataclasses.fields(cls)}
        out: dict[str, Any] = {}
        for key in keys:
            f = by_name[key]
            if key in d:
                out[key] = self.checked(
                    partial(check_value, f, d[key], self.spell(prefix), owner=cls)
                )
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise self.fail(prefix + key, "is missing (required; no value given)")
        return out

    @staticmethod
    def spell(prefix: str) -> Spell:
        return lambda k: f"key '{prefix}{k}'"

    def name(self, name: str) -> None:
        """A recipe's name names its default output folder (``runs/NAME``): one plain folder
        name, so that nothing is written outside ``runs/``."""
        if (
            not name.strip()
            or name.startswith(".")
            or any(c in name for c in "/\\\0:")
            or not name.isprintable()
        ):
            raise self.bad(
                "name", name, "must be a plain folder name (no path separators, no leading '.')"
            )

    def unique(self, key: str, values: Sequence[Any]) -> None:
        for i, v in enumerate(values):
            if v in values[:i]:
                raise self.bad(key, list(values), f"{v!r} appears twice")

    def seed_list(self, key: str, seeds: Sequence[int]) -> None:
        if not seeds:
            raise self.bad(key, [], "needs at least one seed")
        self.unique(key, seeds)
        seed = next(f for f in dataclasses.fields(TrainConfig) if f.name == "seed")
        for s in seeds:
            self.checked(
                partial(check_value, seed, s, lambda _: f"key '{key}' (a seed)", owner=TrainConfig)
            )

    def topk(self, key: str, k: int | None) -> None:
        if k is not None and self.classes is not None and k >= self.classes:
            raise self.bad(key, k, f"top-K must be below the dataset's {self.classes} classes")

    # -- the tables ------------------------------------------------------------------------

    def recipe(self, d: Mapping[str, Any]) -> dict[str, Any]:
        d = self.table("<root>", d)
        scalar_keys = field_names(self.recipe_cls, recipe=True)
        self.check_keys("", d, (*scalar_keys, *_TABLES))
        for key in ("dataset", "teacher", "dump", "students"):
            if key not in d:
                raise self.fail(key, "is missing (required; no value given)")
        if "name" not in d:
            d = {**d, "name": Path(self.source.split(" ")[0]).stem or "recipe"}
        scalars = self.fields(self.recipe_cls, "", d, scalar_keys)
        self.name(scalars["name"])
        seeds = scalars.get("seeds", (0,))
        self.seed_list("seeds", seeds)
        dataset = self.dataset(d["dataset"])
        teacher = self.teacher(d["teacher"], dataset)
        sort = self.sort(d.get("sort", {}))
        return {
            "dataset": dataset,
            "teacher": teacher,
            "dump": self.dump(d["dump"], dataset, teacher),
            "sort": sort,
            "students": self.students(d["students"], d.get("train", {}), seeds, sort, dataset),
            "source": self.source,
            **scalars,
        }

    def dataset(self, value: Any) -> DatasetSpec:
        from sortkd_cache.datasets import DATASETS, spec_classes

        if isinstance(value, str):
            value = {"spec": value}
        d = self.table("dataset", value)
        keys = [f.name for f in dataclasses.fields(DatasetSpec)]
        self.check_keys("dataset.", d, keys)
        spec = DatasetSpec(**self.fields(DatasetSpec, "dataset.", d, keys))
        if not spec.spec.strip():
            raise self.bad("dataset.spec", spec.spec, "must not be empty")
        try:
            self.classes = spec_classes(spec.spec)
        except SortKDError as exc:
            raise self.bad("dataset.spec", spec.spec, str(exc).splitlines()[0]) from None
        name = spec.spec.partition(":")[0]
        if spec.data_root is not None and not DATASETS.get(name).uses_root:
            raise self.bad("dataset.data_root", spec.data_root, f"{spec.spec!r} has no data root")
        return spec

    def teacher(self, value: Any, dataset: DatasetSpec) -> TeacherSpec:
        d = self.table("teacher", value)
        keys = [f.name for f in dataclasses.fields(TeacherSpec)]
        self.check_keys("teacher.", d, keys)
        spec = TeacherSpec(**self.fields(TeacherSpec, "teacher.", d, keys))
        if spec.checkpoint is not None:
            for key in _TEACHER_TRAIN_KEYS:
                if key in d:
                    raise self.bad(
                        f"teacher.{key}",
                        d[key],
                        "teacher training keys have no effect with teacher.checkpoint "
                        f"'{spec.checkpoint}'; remove one of them",
                    )
            if not spec.checkpoint.strip():
                raise self.bad("teacher.checkpoint", spec.checkpoint, "must not be empty")
        self.checked(lambda: check_schedule(spec, self.spell("teacher.")))
        names = {"student": "arch", "dataset": "dataset.spec"}
        self.checked(
            lambda: TrainConfig(
                student=spec.arch, dataset=dataset.spec, loss="ce", out=_OUT, seed=spec.seed,
                augment=spec.augment, **spec.schedule_options(),
                spell=lambda k: f"key '{'' if k == 'dataset' else 'teacher.'}{names.get(k, k)}'",
            )
        )  # fmt: skip
        return spec

    def dump(self, value: Any, dataset: DatasetSpec, teacher: TeacherSpec) -> DumpSpec:
        d = self.table("dump", value)
        keys = dump_stage.recipe_keys()
        self.check_keys("dump.", d, keys)
        given = self.fields(DumpConfig, "dump.", d, keys)
        if "views" not in d:
            raise self.fail("dump.views", "is missing (required; no value given)")
        cfg = self.checked(
            lambda: DumpConfig(
                dataset=dataset.spec, teacher=teacher.arch, out=_STORE, **given,
                spell=self.spell("dump."),
            )
        )  # fmt: skip
        self.topk("dump.topk", cfg.topk)
        return DumpSpec({k: getattr(cfg, k) for k in keys})

    def sort(self, value: Any) -> SortSpec:
        d = self.table("sort", value)
        self.check_keys("sort.", d, ["methods"])
        spec = SortSpec(**self.fields(SortSpec, "sort.", d, ["methods"]))
        for m in spec.methods:
            if m not in SORT_METHODS:
                raise self.bad("sort.methods", m, f"must be one of {', '.join(SORT_METHODS)}")
        self.unique("sort.methods", spec.methods)
        return spec

    def students(
        self,
        value: Any,
        train: Any,
        seeds: tuple[int, ...],
        sort: SortSpec,
        dataset: DatasetSpec,
    ) -> tuple[StudentSpec, ...]:
        keys = train_stage.recipe_keys()
        defaults = self.table("train", train)
        self.check_keys("train.", defaults, (*keys, *LOSSES.names()))
        base = self.fields(TrainConfig, "train.", defaults, [k for k in keys if k in defaults])
        self.per_loss = {
            name: dict(self.table(f"train.{name}", defaults[name]))
            for name in LOSSES.names()
            if name in defaults
        }
        if not isinstance(value, list) or not value:
            shown = type(value).__name__
            raise self.fail(
                "students",
                f"expects a non-empty list of [[students]] tables, got {value!r} ({shown})",
            )
        out = [
            self.student(f"students[{i}].", item, base, seeds, sort, dataset)
            for i, item in enumerate(value)
        ]
        self.unique("students.name", [s.name for s in out])
        self.unique("students.name (as directory names)", [s.slug for s in out])
        return tuple(out)

    def student(
        self,
        prefix: str,
        value: Any,
        base: dict[str, Any],
        seeds: tuple[int, ...],
        sort: SortSpec,
        dataset: DatasetSpec,
    ) -> StudentSpec:
        keys = train_stage.recipe_keys()
        d = self.table(prefix.rstrip("."), value)
        self.check_keys(prefix, d, ("name", "seeds", *keys, *loss_options()))
        if "name" not in d:
            raise self.fail(prefix + "name", "is missing (required; no value given)")
        own_spec = self.fields(StudentSpec, prefix, d, [k for k in ("name", "seeds") if k in d])
        own = self.fields(TrainConfig, prefix, d, [k for k in keys if k in d])
        merged = {**base, **own}
        if "student" not in merged:
            raise self.fail(
                prefix + "student", "is missing (required here or in [train]; no value given)"
            )

        def where(key: str) -> str:
            return f"train.{key}" if key in base and key not in own else prefix + key

        spec_seeds = own_spec.get("seeds", seeds)
        self.seed_list(prefix + "seeds", spec_seeds)
        options = self.loss_options(prefix, d, merged.get("loss", "kd"))
        cfg = self.checked(
            lambda: TrainConfig(
                cache=_STORE, dataset=dataset.spec, out=_OUT, seed=spec_seeds[0], **merged,
                loss_options=options, spell=lambda k: f"key '{where(k)}'",
            )
        )  # fmt: skip
        spec = StudentSpec(
            name=own_spec["name"],
            seeds=spec_seeds,
            values={k: getattr(cfg, k) for k in keys},
            loss_options=options,
        )
        if not spec.name.strip() or not spec.slug:
            raise self.bad(prefix + "name", spec.name, "needs a letter or digit")
        if spec.loss != "ce" and spec.logits != "raw" and spec.logits not in sort.methods:
            raise self.bad(
                where("logits"),
                spec.logits,
                f"variant '{spec.name}' needs sort.methods to include '{spec.logits}' "
                f"(it is {list(sort.methods)})",
            )
        self.topk(where("topk"), spec.topk)
        return spec

    def loss_options(self, prefix: str, d: Mapping[str, Any], loss: Any) -> dict[str, float]:
        """The variant's loss options: ``[train.LOSS]``, then its own keys; each checked by the
        loss itself (an option it does not take is refused, naming the key and the loss)."""
        if not isinstance(loss, str) or loss not in LOSSES:
            return {}  # the unknown loss is reported by TrainConfig
        table = self.per_loss.get(loss, {})
        given = {k: (f"train.{loss}.{k}", v) for k, v in table.items()}
        given |= {k: (prefix + k, v) for k, v in d.items() if k in loss_options()}
        names = {k: where for k, (where, _) in given.items()}
        try:
            cfg = make_loss(
                loss, {k: v for k, (_, v) in given.items()}, spell=lambda k: repr(names.get(k, k))
            )
        except ConfigError as exc:
            raise ConfigError(f"{self.source}: key {exc}") from None
        return {k: cfg.options()[k] for k in given}


def check_recipe(d: Mapping[str, Any], source: str, recipe_cls: type) -> dict[str, Any]:
    """The validated fields of a ``recipe_cls`` (:class:`~sortkd_cache.pipelines.recipes.
    Recipe`) from parsed recipe data, whose top-level keys it declares; ``source`` names the
    file in errors."""
    return _Parser(source, recipe_cls).recipe(d)


def check_data(recipe: Any) -> None:
    """What a recipe reads must exist before a stage runs or is planned (``--dry-run``): an
    ``imagefolder:PATH`` dataset's folder (a shipped recipe names a folder that is not here
    until the user puts the data there, so loading the recipe does not check it)."""
    name, _, folder = recipe.dataset.spec.partition(":")
    if name == "imagefolder" and not os.path.isdir(folder):
        raise ConfigError(
            f"{recipe.source}: key 'dataset.spec' has bad value {recipe.dataset.spec!r}: no "
            f"such directory {folder!r} (put the images there, or --set dataset.spec=...)"
        )
