"""Dataset SPEC strings: parsing, validation and :func:`load_dataset`.

Grammar (names are lower case, fields separated by ``:``)::

    digits | cifar10 | cifar100 | imagefolder:PATH | fake:N:C:SIZE

``imagefolder:PATH`` splits at the first ``:`` only, so PATH may itself contain ``:``.
Splits are ``train`` and ``test``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import DatasetError
from ._base import ImageDataset

__all__ = ["KNOWN_DATASETS", "SPLITS", "DatasetSpec", "load_dataset", "parse_dataset_spec"]

KNOWN_DATASETS: tuple[str, ...] = (
    "cifar10",
    "cifar100",
    "digits",
    "fake:N:C:SIZE",
    "imagefolder:PATH",
)
SPLITS: tuple[str, ...] = ("test", "train")
_FAKE_FIELDS: tuple[tuple[str, int], ...] = (("N", 1), ("C", 2), ("SIZE", 8))


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

    def fake_params(self) -> tuple[int, int, int]:
        """``(N, C, SIZE)`` of a ``fake`` spec."""
        if self.name != "fake":
            raise DatasetError(f"dataset spec {str(self)!r} is not a fake:N:C:SIZE spec")
        n, c, size = (int(a) for a in self.args)
        return n, c, size


def _unknown(spec: str) -> DatasetError:
    return DatasetError(f"unknown dataset {spec!r}; known: {', '.join(KNOWN_DATASETS)}")


def parse_dataset_spec(spec: str) -> DatasetSpec:
    """Parse and validate ``spec``; raise :class:`DatasetError` naming the bad value."""
    if not isinstance(spec, str) or not spec:
        raise _unknown(str(spec))
    name, sep, rest = spec.partition(":")
    if name in ("digits", "cifar10", "cifar100"):
        if sep:
            raise DatasetError(f"dataset {name!r} takes no arguments, got {spec!r}")
        return DatasetSpec(name)
    if name == "imagefolder":
        if not rest:
            raise DatasetError(f"malformed dataset spec {spec!r}; expected imagefolder:PATH")
        return DatasetSpec(name, (rest,))
    if name == "fake":
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
        return DatasetSpec(name, tuple(values))
    raise _unknown(spec)


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
    if parsed.name == "digits":
        from .digits import load_digits

        return load_digits(split)
    if parsed.name == "fake":
        from .fake import load_fake

        n, c, size = parsed.fake_params()
        return load_fake(n, c, size, split)
    if parsed.name == "imagefolder":
        from .imagefolder import load_imagefolder

        return load_imagefolder(parsed.args[0], split)
    from .cifar import load_cifar

    return load_cifar(parsed.name, split, data_root=data_root, download=download)
