"""Validation of recipe data: every error names the file, the key and the value.

See :mod:`sortkd_cache.pipelines.recipe` for the schema. Types are checked against the spec
dataclasses' annotations (``int`` accepted for ``float``; ``bool`` never for a number), then
values (ranges, choices, known architectures and losses, logits kinds the sort stage makes).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sortkd_cache.errors import ConfigError
from sortkd_cache.pipelines._train_config import Schedule, check_schedule
from sortkd_cache.pipelines.recipe import (
    DTYPES,
    SORT_METHODS,
    VIEW_ORDERS,
    DatasetSpec,
    DumpSpec,
    Recipe,
    SortSpec,
    StudentSpec,
    TeacherSpec,
)
from sortkd_cache.sorting import LOGIT_KINDS

__all__ = ["check_recipe"]

_TEACHER_TRAIN_KEYS = tuple(
    f.name for f in dataclasses.fields(TeacherSpec) if f.name not in ("arch", "checkpoint")
)
_VARIANT_KEYS = tuple(
    f.name for f in dataclasses.fields(StudentSpec) if f.name not in ("name", "loss_options")
)
_TRAIN_KEYS = tuple(k for k in _VARIANT_KEYS if k != "seeds")
_SCALAR_KEYS = ("name", "description", "seeds", "device", "threads")
_TOP_KEYS = (*_SCALAR_KEYS, "dataset", "teacher", "dump", "sort", "train", "students")


def _expects(type_str: str) -> str:
    return {
        "str": "a string",
        "str | None": "a string",
        "int": "an integer",
        "int | None": "an integer",
        "float": "a number",
        "bool": "true or false",
        "tuple[int, ...]": "a list of integers",
        "tuple[str, ...]": "a list of strings",
    }[type_str]


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.per_loss: dict[str, dict[str, Any]] = {}

    def fail(self, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.source}: key '{key}' {msg}")

    def bad(self, key: str, value: Any, why: str) -> ConfigError:
        return self.fail(key, f"has bad value {value!r}: {why}")

    def coerce(self, key: str, value: Any, type_str: str) -> Any:
        ok: bool
        if type_str in ("str", "str | None"):
            ok = isinstance(value, str)
        elif type_str in ("int", "int | None"):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif type_str == "float":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        elif type_str == "bool":
            ok = isinstance(value, bool)
        elif type_str == "tuple[int, ...]":
            ok = isinstance(value, list) and all(
                isinstance(v, int) and not isinstance(v, bool) for v in value
            )
            value = tuple(value) if ok else value
        else:  # tuple[str, ...]
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            value = tuple(value) if ok else value
        if not ok:
            shown = type(value).__name__
            raise self.fail(key, f"expects {_expects(type_str)}, got {value!r} ({shown})")
        return value

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
                out[key] = self.coerce(prefix + key, d[key], str(f.type))
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise self.fail(prefix + key, "is missing (required; no value given)")
        return out

    def positive(self, key: str, value: Any) -> None:
        if value is not None and value <= 0:
            raise self.bad(key, value, "must be > 0")

    def non_negative(self, key: str, value: Any) -> None:
        if value is not None and value < 0:
            raise self.bad(key, value, "must be >= 0")

    def choice(self, key: str, value: Any, choices: Sequence[str]) -> None:
        if value not in choices:
            raise self.bad(key, value, f"must be one of {', '.join(choices)}")

    def unique(self, key: str, values: Sequence[Any]) -> None:
        for i, v in enumerate(values):
            if v in values[:i]:
                raise self.bad(key, list(values), f"{v!r} appears twice")

    def model(self, key: str, arch: str) -> None:
        from sortkd_cache.models import list_models, model_exists

        if not model_exists(arch):
            close = difflib.get_close_matches(arch, list_models(), n=3)
            hint = f"; close: {', '.join(close)}" if close else ""
            raise self.bad(key, arch, f"unknown architecture{hint}")

    def schedule(self, where: Callable[[str], str], spec: Schedule) -> None:
        """The schedule's own checks (the train stage's), naming the recipe key."""
        try:
            check_schedule(spec, spell=lambda k: f"key '{where(k)}'")
        except ConfigError as exc:
            raise ConfigError(f"{self.source}: {exc}") from None

    # -- the tables ------------------------------------------------------------------------

    def recipe(self, d: Mapping[str, Any]) -> Recipe:
        d = self.table("<root>", d)
        self.check_keys("", d, _TOP_KEYS)
        for key in ("dataset", "teacher", "dump", "students"):
            if key not in d:
                raise self.fail(key, "is missing (required; no value given)")
        if "name" not in d:
            d = {**d, "name": Path(self.source.split(" ")[0]).stem or "recipe"}
        scalars = self.fields(Recipe, "", d, _SCALAR_KEYS)
        self.positive("threads", scalars.get("threads"))
        seeds = scalars.get("seeds", (0,))
        if not seeds:
            raise self.bad("seeds", [], "needs at least one seed")
        self.unique("seeds", seeds)
        sort = self.sort(d.get("sort", {}))
        return Recipe(
            dataset=self.dataset(d["dataset"]),
            teacher=self.teacher(d["teacher"]),
            dump=self.dump(d["dump"]),
            sort=sort,
            students=self.students(d["students"], d.get("train", {}), seeds, sort),
            source=self.source,
            **scalars,
        )

    def dataset(self, value: Any) -> DatasetSpec:
        if isinstance(value, str):
            value = {"spec": value}
        d = self.table("dataset", value)
        keys = [f.name for f in dataclasses.fields(DatasetSpec)]
        self.check_keys("dataset.", d, keys)
        spec = DatasetSpec(**self.fields(DatasetSpec, "dataset.", d, keys))
        if not spec.spec.strip():
            raise self.bad("dataset.spec", spec.spec, "must not be empty")
        from sortkd_cache.datasets._spec import ROOTED

        if spec.data_root is not None and spec.spec.partition(":")[0] not in ROOTED:
            raise self.bad("dataset.data_root", spec.data_root, f"{spec.spec!r} has no data root")
        return spec

    def teacher(self, value: Any) -> TeacherSpec:
        d = self.table("teacher", value)
        keys = [f.name for f in dataclasses.fields(TeacherSpec)]
        self.check_keys("teacher.", d, keys)
        spec = TeacherSpec(**self.fields(TeacherSpec, "teacher.", d, keys))
        self.model("teacher.arch", spec.arch)
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
        self.schedule(lambda k: f"teacher.{k}", spec)
        return spec

    def dump(self, value: Any) -> DumpSpec:
        d = self.table("dump", value)
        keys = [f.name for f in dataclasses.fields(DumpSpec)]
        self.check_keys("dump.", d, keys)
        spec = DumpSpec(**self.fields(DumpSpec, "dump.", d, keys))
        self.positive("dump.views", spec.views)
        self.positive("dump.batch_size", spec.batch_size)
        self.positive("dump.chunk_samples", spec.chunk_samples)
        self.choice("dump.dtype", spec.dtype, DTYPES)
        self.positive("dump.topk", spec.topk)
        return spec

    def sort(self, value: Any) -> SortSpec:
        d = self.table("sort", value)
        self.check_keys("sort.", d, ["methods"])
        spec = SortSpec(**self.fields(SortSpec, "sort.", d, ["methods"]))
        for m in spec.methods:
            self.choice("sort.methods", m, SORT_METHODS)
        self.unique("sort.methods", spec.methods)
        return spec

    def students(
        self, value: Any, train: Any, seeds: tuple[int, ...], sort: SortSpec
    ) -> tuple[StudentSpec, ...]:
        from sortkd_cache.losses import LOSSES

        defaults = self.table("train", train)
        self.check_keys("train.", defaults, (*_TRAIN_KEYS, *LOSSES.names()))
        base = self.fields(
            StudentSpec, "train.", defaults, [k for k in _TRAIN_KEYS if k in defaults]
        )
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
        out: list[StudentSpec] = []
        for i, item in enumerate(value):
            out.append(self.student(f"students[{i}].", item, base, seeds, sort))
        names = [s.name for s in out]
        self.unique("students.name", names)
        self.unique("students.name (as directory names)", [s.slug for s in out])
        return tuple(out)

    def student(
        self,
        prefix: str,
        value: Any,
        base: dict[str, Any],
        seeds: tuple[int, ...],
        sort: SortSpec,
    ) -> StudentSpec:
        from sortkd_cache.losses import loss_options

        d = self.table(prefix.rstrip("."), value)
        self.check_keys(prefix, d, ("name", *_VARIANT_KEYS, *loss_options()))
        if "name" not in d:
            raise self.fail(prefix + "name", "is missing (required; no value given)")
        own = self.fields(StudentSpec, prefix, d, [k for k in ("name", *_VARIANT_KEYS) if k in d])
        merged = {"seeds": seeds, **base, **own}
        merged["loss_options"] = self.loss_options(prefix, d, merged.get("loss", "kd"))
        if "student" not in merged:
            raise self.fail(
                prefix + "student", "is missing (required here or in [train]; no value given)"
            )
        spec = StudentSpec(**merged)
        if not spec.name.strip() or not spec.slug:
            raise self.bad(prefix + "name", spec.name, "needs a letter or digit")
        if not spec.seeds:
            raise self.bad(prefix + "seeds", [], "needs at least one seed")
        self.unique(prefix + "seeds", spec.seeds)
        self.model(prefix + "student", spec.student)

        def where(key: str) -> str:
            return f"train.{key}" if key in base and key not in own else prefix + key

        self._student_values(where, spec, sort)
        return spec

    def loss_options(self, prefix: str, d: Mapping[str, Any], loss: Any) -> dict[str, float]:
        """The variant's loss options: ``[train.LOSS]``, then its own keys; each checked by the
        loss itself (an option it does not take is refused, naming the key and the loss)."""
        from sortkd_cache.losses import LOSSES, loss_options, make_loss

        if not isinstance(loss, str) or loss not in LOSSES:
            return {}  # the unknown loss is reported by _student_values
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

    def _student_values(
        self, where: Callable[[str], str], spec: StudentSpec, sort: SortSpec
    ) -> None:
        from sortkd_cache.losses import LOSSES

        self.choice(where("loss"), spec.loss, LOSSES.names())
        self.choice(where("logits"), spec.logits, LOGIT_KINDS)
        if spec.loss != "ce" and spec.logits != "raw" and spec.logits not in sort.methods:
            raise self.bad(
                where("logits"),
                spec.logits,
                f"variant '{spec.name}' needs sort.methods to include '{spec.logits}' "
                f"(it is {list(sort.methods)})",
            )
        self.choice(where("views_order"), spec.views_order, VIEW_ORDERS)
        self.positive(where("topk"), spec.topk)
        if spec.sparse_tail is not None:
            from sortkd_cache.sparse import TAILS

            self.choice(where("sparse_tail"), spec.sparse_tail, TAILS)
        if spec.loss == "ce":
            for key in ("topk", "sparse_tail"):
                if getattr(spec, key) is not None:
                    raise self.bad(
                        where(key), getattr(spec, key), "has no effect with loss 'ce' (no teacher)"
                    )
        self.schedule(where, spec)


def check_recipe(d: Mapping[str, Any], source: str) -> Recipe:
    """A validated :class:`Recipe` from parsed recipe data; ``source`` names the file."""
    return _Parser(source).recipe(d)
