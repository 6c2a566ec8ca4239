"""Small helpers shared by the stages: device choice, progress bars, teacher construction."""

from __future__ import annotations

import datetime as dt
import os
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch

from sortkd_cache.checkpoint import file_sha256, load_weights
from sortkd_cache.choices import PRECISIONS, TEACHER_INITS
from sortkd_cache.errors import CheckpointError, ConfigError
from sortkd_cache.models import create_model, create_pretrained

__all__ = [
    "PRECISIONS",
    "TEACHER_INITS",
    "build_teacher",
    "clean_partial_files",
    "check_precision",
    "dataset_folder",
    "forward_context",
    "prepare_for_precision",
    "progress_bar",
    "resolve_device",
    "utc_now",
]

#: Teacher forward precisions: name -> autocast dtype (None: plain float32, exact).
AUTOCAST: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


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
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def dataset_folder(spec: str | None) -> str | None:
    """The folder an ``imagefolder:PATH`` spec reads (an input no output may overlap)."""
    if spec is not None and spec.startswith("imagefolder:"):
        return spec.split(":", 1)[1]
    return None


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

    ``init``: ``checkpoint`` loads ``ckpt``; ``pretrained`` takes a timm or torchvision
    model's published weights from the local caches (downloaded where online; see
    :mod:`sortkd_cache.models`); ``random`` (tests and benchmarks) seeds the weights with
    ``torch.manual_seed(seed)``, and no sha256 exists.
    """
    if init not in TEACHER_INITS:
        raise ConfigError(f"unknown --teacher-init '{init}'; use {', '.join(TEACHER_INITS)}")
    if init != "checkpoint" and ckpt is not None:
        raise ConfigError(f"--teacher-init {init} and --teacher-ckpt exclude each other")
    if init == "checkpoint" and ckpt is None:
        raise CheckpointError(
            f"teacher '{arch}' has no weights: pass --teacher-ckpt PATH, --teacher-init "
            "pretrained (timm: and torchvision models) or --teacher-init random (tests only)"
        )
    if ckpt is not None and not Path(ckpt).is_file():
        raise CheckpointError(f"teacher checkpoint '{ckpt}' not found")
    sha: str | None = None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if init == "pretrained":
            model, weights = create_pretrained(arch, num_classes, in_chans)
            sha = file_sha256(weights)
        else:
            model = create_model(arch, num_classes=num_classes, in_chans=in_chans)
    if ckpt is not None:
        sha = load_weights(model, ckpt, arch)
    model.eval().to(device)
    return model, sha


def _cpu_bf16_works() -> bool:
    """Whether torch computes a bf16 matmul under CPU autocast here (emulated or native)."""
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = torch.ones(2, 2) @ torch.ones(2, 2)
        return bool(out.dtype == torch.bfloat16 and float(out[0, 0]) == 2.0)
    except RuntimeError:
        return False


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision that is unknown or that ``device`` cannot run.

    ``fp16`` runs wherever torch autocasts float16: on a CPU that is slow (it is for CUDA) but
    correct, as ``train --precision fp16`` runs there too. ``bf16`` on CUDA needs a GPU with
    bf16 (``torch.cuda.is_bf16_supported``); on a CPU it is accepted wherever torch computes
    bf16 under autocast (emulated on CPUs without native bf16 instructions: correct, only
    slower).
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown --precision '{precision}'; use {', '.join(PRECISIONS)}")
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError(f"--precision bf16: the GPU '{device}' has no bf16 support")
        if device.type == "cpu" and not _cpu_bf16_works():
            raise ConfigError("--precision bf16: this CPU build of torch cannot compute bf16")


def forward_context(precision: str, device: torch.device) -> AbstractContextManager[Any]:
    """Autocast for the forward pass at ``precision`` (nothing for fp32)."""
    dtype = AUTOCAST[precision]
    if dtype is None:
        return nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def prepare_for_precision(model: torch.nn.Module, precision: str, device: torch.device) -> bool:
    """Put ``model`` in channels_last on CUDA for bf16/fp16 (tensor-core layouts); returns
    whether inputs must be made channels_last too. fp32 keeps the default layout (exact)."""
    if precision == "fp32" or device.type != "cuda":
        return False
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return True


def clean_partial_files(store_dir: str | os.PathLike[str]) -> int:
    """Delete half-written ``*.partial`` files left by a killed writer; returns how many."""
    count = 0
    for path in Path(store_dir).rglob("*.partial"):
        path.unlink(missing_ok=True)
        count += 1
    return count
