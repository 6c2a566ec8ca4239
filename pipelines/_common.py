"""Small helpers shared by the stages: device choice, progress bars, teacher construction."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import torch

from sortkd_cache.errors import CheckpointError, ConfigError

__all__ = ["build_teacher", "progress_bar", "resolve_device", "utc_now"]


def resolve_device(device: str) -> torch.device:
    """'auto' picks CUDA when available, else CPU; 'cuda' without a GPU is refused."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device '{device}' asked for, but no CUDA device is available")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ConfigError(f"unknown device '{device}'; use auto, cpu or cuda")
    return torch.device(device)


def progress_bar(total: int, desc: str, unit: str, enabled: bool = True, **kw: Any) -> Any:
    """A tqdm bar on stderr with rate and ETA (disabled when ``enabled`` is false)."""
    from tqdm.auto import tqdm

    disable = not enabled or os.environ.get("SORTKD_NO_PROGRESS") == "1"
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=unit in ("img", "B"),
        dynamic_ncols=True,
        file=sys.stderr,
        disable=disable,
        mininterval=0.5,
        **kw,
    )


def utc_now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def build_teacher(
    arch: str,
    num_classes: int,
    in_chans: int,
    *,
    ckpt: str | None,
    init: str,
    seed: int,
    device: torch.device,
) -> tuple[torch.nn.Module, str | None]:
    """The teacher in eval mode on ``device`` and the sha256 of its weights file.

    A teacher without weights is refused unless ``init == 'random'`` (tests and benchmarks),
    in which case the weights come from ``torch.manual_seed(seed)`` and no sha256 exists.
    """
    from sortkd_cache.checkpoint import load_weights
    from sortkd_cache.models import create_model

    if init not in ("checkpoint", "random"):
        raise ConfigError(f"unknown --teacher-init '{init}'; use checkpoint or random")
    if init == "random" and ckpt is not None:
        raise ConfigError("--teacher-init random and --teacher-ckpt exclude each other")
    if init == "checkpoint" and ckpt is None:
        raise CheckpointError(
            f"teacher '{arch}' has no weights: pass --teacher-ckpt PATH "
            "(or --teacher-init random, for tests and benchmarks only)"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model(arch, num_classes=num_classes, in_chans=in_chans)
    sha: str | None = None
    if ckpt is not None:
        if not Path(ckpt).is_file():
            raise CheckpointError(f"teacher checkpoint '{ckpt}' not found")
        sha = load_weights(model, ckpt, arch)
    model.eval().to(device)
    return model, sha
