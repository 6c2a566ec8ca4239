"""Weights files: safe loading, strict architecture checks, atomic safetensors saving.

Loading never unpickles arbitrary objects: ``.safetensors`` files are read with safetensors,
anything else with ``torch.load(..., weights_only=True)``. Every failure is a one-line
:class:`~sortkd_cache.errors.CheckpointError` naming the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeGuard

import torch
import torch.nn as nn

from sortkd_cache.errors import CheckpointError

__all__ = ["file_sha256", "load_state_dict", "load_weights", "save_weights"]

PathLike = str | os.PathLike[str]

_BLOCK = 1 << 20
_NESTED_KEYS = ("state_dict", "model", "model_state_dict")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DDP / DataParallel, torch.compile


def file_sha256(path: PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(_BLOCK):
                digest.update(block)
    except OSError as exc:
        raise CheckpointError(f"cannot read {os.fspath(path)!r}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1].split("Check the documentation", 1)[0]
    text = " ".join(text.split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _looks_like_safetensors(path: str) -> bool:
    """A safetensors file starts with a little-endian u64 header length, then ``{``."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(9)
    except OSError:
        return False
    if len(head) < 9:
        return False
    header_len = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 8 + header_len <= size


def _is_tensor_mapping(obj: object) -> TypeGuard[Mapping[str, torch.Tensor]]:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _extract_state_dict(obj: object, shown: str) -> dict[str, torch.Tensor]:
    found: Mapping[str, torch.Tensor]
    if _is_tensor_mapping(obj):
        found = obj
    elif isinstance(obj, Mapping):
        inner = [obj[k] for k in _NESTED_KEYS if _is_tensor_mapping(obj.get(k))]
        if not inner:
            keys = ", ".join(repr(k) for k in list(obj)[:5]) or "none"
            raise CheckpointError(
                f"checkpoint {shown!r} holds no state_dict: expected a mapping of names to "
                f"tensors, or one under 'state_dict', 'model' or 'model_state_dict' "
                f"(top-level keys: {keys})"
            )
        found = inner[0]
    else:
        raise CheckpointError(
            f"checkpoint {shown!r} holds a {type(obj).__name__}, not a state_dict "
            "(a mapping of names to tensors)"
        )
    state = dict(found)
    stripped = True
    while stripped:
        stripped = False
        for prefix in _WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                stripped = True
    return state


def _load_raw(path: str) -> Any:
    if path.endswith(".safetensors") or _looks_like_safetensors(path):
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except Exception as exc:
            raise CheckpointError(
                f"checkpoint {path!r} is not a readable safetensors file: {_one_line(exc)}"
            ) from exc
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        match = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if match:
            raise CheckpointError(
                f"checkpoint {path!r} needs unpickling of arbitrary objects "
                f"({match.group(1)}), which is refused; re-save it as a plain state_dict "
                "or as .safetensors"
            ) from exc
        raise CheckpointError(
            f"checkpoint {path!r} is unreadable or corrupt: {_one_line(exc)}"
        ) from exc


def load_state_dict(path: PathLike) -> dict[str, torch.Tensor]:
    """Load a weights file as a CPU state_dict, without unpickling arbitrary objects.

    ``.safetensors`` (by suffix or by content) via safetensors; anything else via
    ``torch.load(path, map_location="cpu", weights_only=True)``. Accepts a bare state_dict
    or a dict holding one under ``"state_dict"``, ``"model"`` or ``"model_state_dict"``,
    and strips a ``"module."`` (DDP) or ``"_orig_mod."`` (torch.compile) prefix carried by
    every key. Raises :class:`CheckpointError` for a missing, unreadable, corrupt or unsafe
    file, or content that is not a non-empty mapping of names to tensors.
    """
    shown = os.fspath(path)
    if not os.path.exists(shown):
        raise CheckpointError(f"checkpoint {shown!r} not found")
    if not os.path.isfile(shown):
        raise CheckpointError(f"checkpoint {shown!r} is not a file")
    return _extract_state_dict(_load_raw(shown), shown)


def _count(n: int, what: str, plural: str | None = None) -> str:
    return f"{n} {what if n == 1 else (plural or what + 's')}"


def _fit_problems(model_state: Mapping[str, torch.Tensor], state: Mapping[str, Any]) -> list[str]:
    missing = [k for k in model_state if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in model_state]
    mismatched = [
        (k, tuple(state[k].shape), tuple(v.shape))
        for k, v in model_state.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"{_count(len(missing), 'missing key')} (e.g. {missing[0]!r})")
    if unexpected:
        problems.append(f"{_count(len(unexpected), 'unexpected key')} (e.g. {unexpected[0]!r})")
    if mismatched:
        key, have, want = mismatched[0]
        count = _count(len(mismatched), "shape mismatch", "shape mismatches")
        problems.append(f"{count} (e.g. {key!r}: checkpoint {list(have)} vs model {list(want)})")
    return problems


def load_weights(model: nn.Module, path: PathLike, arch: str) -> str:
    """Load ``path`` into ``model`` strictly and return the file's sha256 (hex).

    ``arch`` only names the architecture in errors. A state_dict for another architecture
    (missing or unexpected keys, or a shape mismatch) raises :class:`CheckpointError`;
    BatchNorm ``num_batches_tracked`` buffers absent from old checkpoints are tolerated.
    """
    shown = os.fspath(path)
    state = load_state_dict(shown)
    model_state = model.state_dict()
    problems = _fit_problems(model_state, state)
    if problems:
        raise CheckpointError(
            f"checkpoint {shown!r} does not fit architecture {arch!r}: {', '.join(problems)}"
        )
    for key, value in model_state.items():
        if key not in state:  # a num_batches_tracked buffer: keep the model's own
            state[key] = value
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint {shown!r} does not fit architecture {arch!r}: {_one_line(exc)}"
        ) from exc
    return file_sha256(shown)


def _to_saveable(model_or_state_dict: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, Any]:
    if isinstance(model_or_state_dict, nn.Module):
        state: Mapping[str, Any] = model_or_state_dict.state_dict()
    elif isinstance(model_or_state_dict, Mapping):
        state = model_or_state_dict
    else:
        raise CheckpointError(
            f"save_weights needs an nn.Module or a state_dict, got "
            f"{type(model_or_state_dict).__name__}"
        )
    out: dict[str, Any] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"cannot save entry {key!r}: a state_dict maps names to tensors, "
                f"got {type(value).__name__}"
            )
        # clone(): own, contiguous CPU storage per tensor (safetensors refuses shared storage)
        out[key] = value.detach().to("cpu").contiguous().clone()
    return out


def save_weights(
    model_or_state_dict: nn.Module | Mapping[str, torch.Tensor],
    path: PathLike,
    *,
    metadata: Mapping[str, str] | None = None,
) -> str:
    """Write weights as safetensors, atomically, and return the file's sha256 (hex).

    The file is written in safetensors format whatever its suffix (``.safetensors`` is the
    convention; :func:`load_state_dict` also recognises the format by content). It is
    written to a temporary file in the same directory and moved into place with
    ``os.replace``, so readers never see a partial file. Missing parent directories are
    created. ``metadata`` (string to string) is stored in the safetensors header.
    """
    from safetensors.torch import save

    target = Path(path)
    tensors = _to_saveable(model_or_state_dict)
    try:
        data: bytes = save(tensors, metadata=dict(metadata) if metadata is not None else None)
    except Exception as exc:
        raise CheckpointError(f"cannot save weights to {str(target)!r}: {_one_line(exc)}") from exc
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise CheckpointError(
            f"cannot save weights to {str(target)!r}: {exc.strerror or exc}"
        ) from exc
    return hashlib.sha256(data).hexdigest()
