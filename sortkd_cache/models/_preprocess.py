"""A teacher's own preprocessing: what its forward sees of a replayed view.

A dump replays each view (uint8, at the augmentation recipe's output size) and hands it to the
teacher after :meth:`TeacherPreprocess.apply`: resized to the teacher's input size with its
interpolation (when the sizes differ; antialiased, on the uint8 pixels, as a PIL resize would
be), then ``(x / 255 - mean) / std`` with the teacher's mean and std. The student keeps the
dataset's normalisation. The record is stored with the teacher (``teacher.preprocess``); a
store made before it existed reads as "the dataset's normalisation" (:meth:`for_dataset`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sortkd_cache import augment
from sortkd_cache.errors import ConfigError

if TYPE_CHECKING:  # the record reads and prints without torch (``info``); apply() needs it
    import torch

__all__ = ["INTERPOLATIONS", "TeacherPreprocess", "parse_floats", "parse_size"]

#: Resize interpolations a tensor resize computes (timm's PIL-only modes are refused).
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


@dataclass(frozen=True)
class TeacherPreprocess:
    """Mean and std (0..1 units, one per channel), the input size ``(h, w)`` (None: the view's
    own size) and the resize interpolation; ``source`` says where they came from (``dataset``,
    ``timm``, ``torchvision``) and ``overridden`` which fields the command line set."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int] | None = None
    interpolation: str = "bilinear"
    source: str = "dataset"
    overridden: tuple[str, ...] = ()
    #: The fraction of the resized image the teacher's own eval transform keeps (timm's
    #: ``crop_pct``, torchvision's crop / resize size); what ``--augment eval`` crops at.
    #: None: not known (the default 0.875 applies).
    crop_pct: float | None = None

    def __post_init__(self) -> None:
        if not self.mean or len(self.mean) != len(self.std):
            raise ConfigError(f"teacher mean {self.mean} and std {self.std} differ in length")
        if min(self.std) <= 0:
            raise ConfigError(f"teacher std must be positive, got {self.std}")
        if self.input_size is not None and (len(self.input_size) != 2 or min(self.input_size) < 1):
            raise ConfigError(f"teacher input size {self.input_size} is not two sizes >= 1")
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(
                f"teacher interpolation {self.interpolation!r} is not one of "
                f"{', '.join(INTERPOLATIONS)}"
            )

    @classmethod
    def for_dataset(cls, mean: Sequence[float], std: Sequence[float]) -> TeacherPreprocess:
        """The dataset's normalisation at the view's size (what every store before this
        record was dumped with)."""
        return cls(tuple(float(m) for m in mean), tuple(float(s) for s in std))

    def override(
        self,
        *,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        input_size: tuple[int, int] | None = None,
        interpolation: str | None = None,
    ) -> TeacherPreprocess:
        """This preprocessing with the fields given (the command line's) replaced."""
        given = {
            "mean": None if mean is None else tuple(float(x) for x in mean),
            "std": None if std is None else tuple(float(x) for x in std),
            "input_size": input_size,
            "interpolation": interpolation,
        }
        changes: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        if not changes:
            return self
        done = tuple(dict.fromkeys(self.overridden + tuple(changes)))
        return replace(self, overridden=done, **changes)

    def check_channels(self, channels: int) -> None:
        if len(self.mean) != channels:
            raise ConfigError(
                f"the teacher's mean/std ({self.source}) have {len(self.mean)} values but the "
                f"dataset has {channels} channels; give --teacher-mean and --teacher-std"
            )

    def apply(self, views: torch.Tensor) -> torch.Tensor:
        """uint8 [..., C, h, w] views -> the teacher's float32 input [..., C, H, W]."""
        if self.input_size is not None and tuple(views.shape[-2:]) != self.input_size:
            views = self._resize(views)
        return augment.normalize(views, self.mean, self.std)

    def _resize(self, views: torch.Tensor) -> torch.Tensor:
        import torchvision.transforms.v2.functional as F
        from torchvision.transforms import InterpolationMode

        mode = InterpolationMode(self.interpolation)
        size = list(self.input_size or ())
        out: torch.Tensor = F.resize(views, size, interpolation=mode, antialias=True)
        return out

    def to_dict(self) -> dict[str, Any]:
        extra = {} if self.crop_pct is None else {"crop_pct": self.crop_pct}
        return {
            "mean": list(self.mean),
            "std": list(self.std),
            "input_size": None if self.input_size is None else list(self.input_size),
            "interpolation": self.interpolation,
            "source": self.source,
            "overridden": list(self.overridden),
        } | extra

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TeacherPreprocess:
        size = d.get("input_size")
        return cls(
            mean=tuple(float(x) for x in d["mean"]),
            std=tuple(float(x) for x in d["std"]),
            input_size=None if size is None else (int(size[0]), int(size[1])),
            interpolation=str(d.get("interpolation", "bilinear")),
            source=str(d.get("source", "dataset")),
            overridden=tuple(str(x) for x in d.get("overridden", ())),
            crop_pct=None if d.get("crop_pct") is None else float(d["crop_pct"]),
        )

    def describe(self) -> str:
        """One line for ``info``."""
        size = "the view's size" if self.input_size is None else "x".join(map(str, self.input_size))
        where = {"dataset": "the dataset's normalisation"}.get(self.source, f"from {self.source}")
        if self.overridden:
            where += f", {', '.join(self.overridden)} from the command line"
        mean = ",".join(f"{m:g}" for m in self.mean)
        std = ",".join(f"{s:g}" for s in self.std)
        return f"mean={mean} std={std} size={size} {self.interpolation} ({where})"


def parse_floats(option: str, text: str | None) -> tuple[float, ...] | None:
    """``"0.5,0.5,0.5"`` -> floats; None stays None; anything else is a one-line error."""
    if text is None:
        return None
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not comma-separated numbers") from None
    return values


#: The largest input side ``--teacher-size`` may ask for, in pixels.
MAX_INPUT_SIZE = 4096


def parse_size(option: str, text: str | None) -> tuple[int, int] | None:
    """``"224"`` or ``"224,192"`` (height, width) -> (h, w); None stays None."""
    if text is None:
        return None
    try:
        parts = [int(x) for x in text.split(",")]
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not SIZE or HEIGHT,WIDTH") from None
    if len(parts) not in (1, 2) or not 1 <= min(parts) <= max(parts) <= MAX_INPUT_SIZE:
        raise ConfigError(
            f"{option} {text!r} is not SIZE or HEIGHT,WIDTH (sizes 1..{MAX_INPUT_SIZE})"
        )
    return (parts[0], parts[-1])
