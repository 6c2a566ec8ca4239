"""Dataset SPEC strings: parsing, validation and :func:`load_dataset`.

Grammar (names are lower case, fields separated by ``:``)::

    digits | digits100[:N] | cifar10 | cifar100 | imagefolder:PATH | fake:N:C:SIZE

``imagefolder:PATH`` splits at the first ``:`` only, so PATH may itself contain ``:``.
Splits are ``train`` and ``test``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._registry import Lazy, Registry, named_entry
from ..choices import SPLITS
from ..errors import DatasetError

if TYPE_CHECKING:
    from ._base import ImageDataset

__all__ = [
    "DATASETS",
    "MAX_PER_CLASS",
    "KNOWN_DATASETS",
    "ROOTED",
    "SPLITS",
    "DatasetKind",
    "DatasetSpec",
    "load_dataset",
    "parse_dataset_spec",
    "spec_classes",
]

#: fake data is generated in memory: at most this many bytes per array (a split's images,
#: N x 3 x SIZE^2; the class patterns, C x 3 x SIZE^2 float64)
FAKE_MAX_BYTES = 4 << 30
_FAKE_FIELDS: tuple[tuple[str, int], ...] = (("N", 1), ("C", 2), ("SIZE", 8))
#: digits100:N: at most this many train images per class
MAX_PER_CLASS = 1000


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed SPEC: ``name`` and its ``args`` (fake: N, C, SIZE as decimal strings;
    imagefolder: the PATH as given)."""

    name: str
    args: tuple[str, ...] = ()

    def __str__(self) -> str:
        """The full spec, re-parseable (includes the imagefolder PATH)."""
        return ":".join((self.name, *self.args))

    @property
    def canonical(self) -> str:
        """The identity string: like ``str(spec)``, but imagefolder keeps only the folder's
        basename (no absolute paths in a store's identity)."""
        if self.name == "imagefolder":
            base = os.path.basename(os.path.abspath(self.args[0]))
            return f"imagefolder:{base}"
        return str(self)

    @property
    def location(self) -> str | None:
        """Where the data is, for a kind that lives in a folder: imagefolder's absolute
        PATH (what a store records, so that it can be found from another directory)."""
        if self.name == "imagefolder":
            return os.path.abspath(self.args[0])
        return None

    def fake_params(self) -> tuple[int, int, int]:
        """``(N, C, SIZE)`` of a ``fake`` spec."""
        if self.name != "fake":
            raise DatasetError(f"dataset spec {str(self)!r} is not a fake:N:C:SIZE spec")
        n, c, size = (int(a) for a in self.args)
        return n, c, size


@dataclass(frozen=True)
class DatasetKind:
    """One dataset name: its SPEC grammar, how its arguments parse, how a split loads
    (``load`` may be :class:`~sortkd_cache._registry.Lazy`: the loader's module, and torch,
    are imported when a split is first loaded, not when the name is listed or parsed)."""

    name: str
    grammar: str
    parse: Callable[[str, str, str], tuple[str, ...]]  # (spec, ":" or "", rest) -> args
    load: Callable[[DatasetSpec, str, str | None, bool], ImageDataset]
    #: Whether it lives under a data root (``--data-root``, ``--download`` act on it).
    uses_root: bool = False
    #: Its class count, read from the spec alone (None: known only once loaded).
    classes: Callable[[DatasetSpec], int] | None = None


#: The dataset names, by the SPEC's first field (other packages register theirs in the
#: ``sortkd_cache.datasets`` entry-point group).
DATASETS: Registry[DatasetKind] = Registry(
    "dataset",
    error=DatasetError,
    group="sortkd_cache.datasets",
    adapt=named_entry(DatasetKind, "dataset", DatasetError),
)


def _unknown(spec: str) -> DatasetError:
    known = ", ".join(kind.grammar for _, kind in DATASETS.items())
    return DatasetError(f"unknown dataset {spec!r}; known: {known}")


def _no_args(spec: str, sep: str, rest: str) -> tuple[str, ...]:
    if sep:
        raise DatasetError(f"dataset {spec.partition(':')[0]!r} takes no arguments, got {spec!r}")
    return ()


def _folder_args(spec: str, sep: str, rest: str) -> tuple[str, ...]:
    if not rest:
        raise DatasetError(f"malformed dataset spec {spec!r}; expected imagefolder:PATH")
    return (rest,)


def _digits100_args(spec: str, sep: str, rest: str) -> tuple[str, ...]:
    if not sep:
        return ()
    if not rest.isascii() or not rest.isdigit() or not 1 <= int(rest) <= MAX_PER_CLASS:
        raise DatasetError(
            f"malformed dataset spec {spec!r}: N (train images per class) must be an integer "
            f"in 1..{MAX_PER_CLASS}, got {rest!r}; expected digits100 or digits100:N"
        )
    return (str(int(rest)),)


def _fake_args(spec: str, sep: str, rest: str) -> tuple[str, ...]:
    fields = rest.split(":") if sep else []
    if len(fields) != len(_FAKE_FIELDS):
        raise DatasetError(f"malformed dataset spec {spec!r}; expected fake:N:C:SIZE")
    values: list[str] = []
    for text, (field, minimum) in zip(fields, _FAKE_FIELDS, strict=True):
        if not text.isascii() or not text.isdigit():
            raise DatasetError(
                f"malformed dataset spec {spec!r}: {field} must be an integer, got "
                f"{text!r}; expected fake:N:C:SIZE"
            )
        if int(text) < minimum:
            raise DatasetError(
                f"malformed dataset spec {spec!r}: {field} must be >= {minimum}, got {text}"
            )
        values.append(str(int(text)))
    _check_fake_arrays(spec, *(int(v) for v in values))
    return tuple(values)


def _check_fake_arrays(spec: str, n: int, c: int, size: int) -> None:
    """Refuse a fake spec whose arrays could not be allocated: each split's uint8 images
    (the test split has max(N // 5, C) samples) and the float64 class patterns [C, 3, S, S]
    must each fit in :data:`FAKE_MAX_BYTES`."""
    pixels = 3 * size * size
    arrays = (
        ("images", max(n, n // 5, c) * pixels, "N, C or SIZE"),
        ("class patterns", c * pixels * 8, "C or SIZE"),
    )
    for what, nbytes, fix in arrays:
        if nbytes > FAKE_MAX_BYTES:
            raise DatasetError(
                f"dataset spec {spec!r} would allocate {nbytes} bytes of {what}, over the "
                f"{FAKE_MAX_BYTES >> 30} GiB limit of synthetic data; use a smaller {fix}"
            )


def _loader(name: str) -> Callable[[DatasetSpec, str, str | None, bool], ImageDataset]:
    """This package's loader of one dataset (sortkd_cache.datasets._loaders), imported on use."""
    return Lazy[[DatasetSpec, str, "str | None", bool], "ImageDataset"](
        f"sortkd_cache.datasets._loaders:{name}"
    )


for _kind in (
    DatasetKind("cifar10", "cifar10", _no_args, _loader("cifar"), True, lambda p: 10),
    DatasetKind("cifar100", "cifar100", _no_args, _loader("cifar"), True, lambda p: 100),
    DatasetKind("digits", "digits", _no_args, _loader("digits"), classes=lambda p: 10),
    DatasetKind(
        "digits100",
        "digits100[:N]",
        _digits100_args,
        _loader("digits100"),
        classes=lambda p: 100,
    ),
    DatasetKind(
        "fake", "fake:N:C:SIZE", _fake_args, _loader("fake"), classes=lambda p: int(p.args[1])
    ),
    DatasetKind("imagefolder", "imagefolder:PATH", _folder_args, _loader("imagefolder")),
):
    DATASETS.add(_kind.name, _kind)
#: This package's dataset names that live under a data root (``--data-root``, ``--download``);
#: a plugin's dataset says so in its own :attr:`DatasetKind.uses_root`.
ROOTED: tuple[str, ...] = tuple(k.name for k in DATASETS.snapshot().values() if k.uses_root)
#: The SPEC grammar of this package's dataset names (``--help``; plugins' are not imported).
KNOWN_DATASETS: tuple[str, ...] = tuple(k.grammar for k in DATASETS.snapshot().values())


def parse_dataset_spec(spec: str) -> DatasetSpec:
    """Parse and validate ``spec``; raise :class:`DatasetError` naming the bad value."""
    if not isinstance(spec, str) or not spec:
        raise _unknown(str(spec))
    name, sep, rest = spec.partition(":")
    if name not in DATASETS:
        raise _unknown(spec)
    return DatasetSpec(name, DATASETS.get(name).parse(spec, sep, rest))


def spec_classes(spec: str) -> int | None:
    """The class count of the dataset ``spec`` names, when the spec alone tells it (no data
    is read); None otherwise (an image folder). Raises DatasetError for a bad spec."""
    parsed = parse_dataset_spec(spec)
    classes = DATASETS.get(parsed.name).classes
    return classes(parsed) if classes is not None else None


def load_dataset(
    spec: str,
    split: str = "train",
    *,
    data_root: str | None = None,
    download: bool = False,
) -> ImageDataset:
    """Load one split of the dataset named by ``spec``.

    ``data_root`` is where cifar10/cifar100 live (default: ``$SORTKD_DATA_ROOT`` or
    ``~/.cache/sortkd-cache/data``); they are downloaded only when ``download=True``.
    ``imagefolder:PATH`` ignores ``data_root`` (a relative PATH is relative to the working
    directory).
    """
    parsed = parse_dataset_spec(spec)
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    kind = DATASETS.get(parsed.name)
    if not kind.uses_root and (data_root is not None or download):
        given = "--data-root" if data_root is not None else "--download"
        raise DatasetError(
            f"{given} applies to datasets under a data root ({', '.join(ROOTED)}), not {spec!r}"
        )
    return kind.load(parsed, split, data_root, download)
