"""Experiment recipes: one TOML file names the dataset, teacher, dump, sort and student runs.

A recipe is loaded with :mod:`tomllib` (data only, nothing is executed) and checked against the
schema below before any work starts. Every error is one :class:`ConfigError` line that names
the file, the key and the value: unknown keys, wrong types, missing fields and bad values.

    name = "digits_demo"            # optional, default: the file name (a plain folder name)
    description = "..."             # optional
    seeds = [0, 1, 2]               # student seeds (default [0])
    device = "auto"                 # optional: auto | cpu | cuda[:N]
    threads = 1                     # optional: torch CPU threads while the recipe runs

    [dataset]                       # or: dataset = "digits"
    spec = "digits"                 # digits | cifar10 | cifar100 | imagefolder:PATH | fake:N:C:S
    data_root = "data"              # optional
    download = false                # optional

    [teacher]
    arch = "digits_cnn_l"
    checkpoint = "teacher.pth"      # either an existing weights file ...
    epochs = 3                      # ... or CE training: epochs, batch_size, lr, milestones,
                                    #     lr_decay, weight_decay, momentum, seed, augment
    [dump]
    views = 8                       # required; also seed, augment, dtype, batch_size,
                                    # chunk_samples, precision, topk (a sparse top-K
                                    # store), topk_temperatures
    [sort]
    methods = ["sort", "swap"]      # default ["sort"]; [] for none

    [train]                         # defaults shared by every student variant
    student = "digits_cnn_s"
    epochs = 8
    [train.dkd]                     # defaults of every variant with loss "dkd": the loss's
    dkd_beta = 2.0                  # own options (see sortkd_cache.losses), nothing else

    [[students]]                    # one table per variant, trained once per seed
    name = "KD sort"
    loss = "kd"
    logits = "sort"                 # raw | sort | swap (sort/swap must be in [sort].methods)

Variant keys (in ``[train]`` or ``[[students]]``; a variant's own value wins): the
``TrainConfig`` options marked as recipe keys (student, loss, logits, the schedule,
views_order, data_seed, topk, sparse_tail); the ``[dump]`` keys are the ``DumpConfig`` options
marked so. Both are checked by those configurations themselves, so a key means in a recipe
what its option means on the command line;
``[[students]]`` also takes ``name`` (required), ``seeds`` and the options of its own loss
(``temperature``, ``dkd_beta``, ...: whatever the loss declares); ``[train.LOSS]`` tables give
those per loss. A loss option that the variant's loss does not take is refused, naming the key
and the loss; one left out takes the loss's paper default. Relative paths are relative to the
working directory. ``overrides`` (``KEY=VALUE``, e.g. ``dump.views=4``; the value is parsed as
a TOML value, else taken as a string) edit the file's data before validation.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sortkd_cache.errors import ConfigError
from sortkd_cache.options import opt
from sortkd_cache.pipelines.recipes._check import check_data, check_recipe
from sortkd_cache.pipelines.recipes._specs import (
    DatasetSpec,
    DumpSpec,
    SortSpec,
    StudentSpec,
    TeacherSpec,
    slugify,
)
from sortkd_cache.runtime import threads_opt

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the tomli backport
    import tomli as tomllib

__all__ = [
    "DatasetSpec",
    "DumpSpec",
    "Recipe",
    "SortSpec",
    "StudentSpec",
    "TeacherSpec",
    "apply_overrides",
    "check_data",
    "load_recipe",
    "recipe_dir",
    "recipe_names",
    "resolve_recipe_path",
    "slugify",
]


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """A recipe: its top-level keys (``recipe=True``: ``name``, ``seeds``, ``device``,
    ``threads``, ``description``, checked by their fields) and its tables."""

    name: str = opt(help="Names the default output folder (runs/NAME).", recipe=True)
    dataset: DatasetSpec
    teacher: TeacherSpec
    dump: DumpSpec
    students: tuple[StudentSpec, ...]
    sort: SortSpec = field(default_factory=SortSpec)
    seeds: tuple[int, ...] = opt((0,), "Student seeds.", recipe=True)
    device: str = opt("auto", "auto | cpu | cuda[:N]", recipe=True)
    threads: int | None = threads_opt(recipe=True)  # while the recipe runs, as --threads
    description: str = opt("", recipe=True)
    source: str = field(default="<recipe>", compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict that :meth:`from_dict` turns back into an equal recipe."""
        teacher = _plain(self.teacher)
        if self.teacher.checkpoint is None:
            teacher.pop("checkpoint")
        else:
            teacher = {"arch": self.teacher.arch, "checkpoint": self.teacher.checkpoint}
        out: dict[str, Any] = _drop_none(
            {
                "name": self.name,
                "description": self.description,
                "seeds": list(self.seeds),
                "device": self.device,
                "threads": self.threads,
                "dataset": _plain(self.dataset),
                "teacher": teacher,
                "dump": dict(self.dump.values),
                "sort": _plain(self.sort),
                "students": [s.to_dict() for s in self.students],
            }
        )
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "<recipe>") -> Recipe:
        """Validate ``d`` (a parsed recipe file); errors name ``source``, the key and value."""
        return cls(**check_recipe(d, source, cls))


def _plain(obj: Any) -> dict[str, Any]:
    d = dataclasses.asdict(obj)
    d.pop("source", None)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _drop_none(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    if isinstance(d, list):
        return [_drop_none(v) for v in d]
    return d


# ---------------------------------------------------------------------------------------------
# Files


def recipe_dir() -> Path:
    """The folder of the recipes shipped with the package."""
    return Path(__file__).resolve().parent


def recipe_names() -> list[str]:
    """Names of the shipped recipes (``sortkd-cache run NAME`` finds them)."""
    return sorted(p.stem for p in recipe_dir().glob("*.toml"))


def resolve_recipe_path(name_or_path: str) -> Path:
    """A recipe file: an existing path, else a shipped recipe's name (with or without .toml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.exists():
        raise ConfigError(f"recipe '{name_or_path}' is not a file")
    if len(path.parts) == 1:
        shipped = recipe_dir() / (path.name if path.suffix == ".toml" else f"{path.name}.toml")
        if shipped.is_file():
            return shipped
    raise ConfigError(
        f"recipe '{name_or_path}' not found: not a file, nor a shipped recipe "
        f"({', '.join(recipe_names()) or 'none'})"
    )


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], source: str) -> dict[str, Any]:
    """``KEY=VALUE`` edits (dotted keys into tables) applied to a copy of ``data``."""
    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{source}: override '{item}' is not KEY=VALUE")
        key, text = (s.strip() for s in item.split("=", 1))
        parts = key.split(".")
        if not all(parts):
            raise ConfigError(f"{source}: override key '{key}' (value {text!r}) is malformed")
        node: Any = out
        for i, part in enumerate(parts[:-1]):
            if part == "students":
                raise ConfigError(
                    f"{source}: override key '{key}' (value {text!r}) cannot address "
                    "[[students]] entries; set [train] defaults (train.KEY) or edit the file"
                )
            child = node.setdefault(part, {})
            if isinstance(child, str) and ".".join(parts[: i + 1]) == "dataset":
                child = node[part] = {"spec": child}
            if not isinstance(child, dict):
                raise ConfigError(
                    f"{source}: override key '{key}' (value {text!r}): "
                    f"'{'.'.join(parts[: i + 1])}' is not a table"
                )
            node = child
        node[parts[-1]] = _parse_value(text)
    return out


def load_recipe(name_or_path: str, overrides: Sequence[str] = ()) -> Recipe:
    """Read, override and validate a recipe file (or a shipped recipe's name)."""
    path = resolve_recipe_path(name_or_path)
    source = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read recipe: {exc}") from None
    if overrides:
        data = apply_overrides(data, overrides, source)
        source = f"{source} (with overrides)"
    data.setdefault("name", path.stem)
    return Recipe.from_dict(data, source=source)
