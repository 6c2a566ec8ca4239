"""Pretrained weights of timm and torchvision models, and a teacher's own preprocessing.

Weights are looked up in the local caches first: the Hugging Face hub cache (``HF_HUB_CACHE``,
else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``) for timm's ``hf_hub_id`` weights, the
torch hub cache (``torch.hub.get_dir()/checkpoints``, i.e. ``TORCH_HOME``) for weights
published by URL (torchvision's, older timm ones). Missing there, they are downloaded as timm
and torchvision do, unless the machine is offline: ``HF_HUB_OFFLINE`` or ``SORTKD_OFFLINE``
set to 1 turns a missing file into a one-line :class:`CheckpointError` and nothing touches
the network; so does a weights host that cannot be reached within ``SORTKD_REMOTE_TIMEOUT``
(one connection tried first, so a machine without network fails at once, not after the
libraries' retries). The file's sha256 is what the store records.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import torch.hub

from sortkd_cache._net import remote_timeout, unreachable
from sortkd_cache.errors import CheckpointError, ConfigError, ModelError
from sortkd_cache.models._preprocess import TeacherPreprocess
from sortkd_cache.models._registry import MODELS
from sortkd_cache.models._timm import (
    create_timm_model,
    is_timm_name,
    timm_preprocess,
    timm_pretrained_cfg,
)
from sortkd_cache.models._torchvision import torchvision_model_names

if TYPE_CHECKING:
    import torch.nn as nn

    from sortkd_cache.models._preprocess import TeacherPreprocess

__all__ = ["create_pretrained", "is_offline", "native_preprocess"]

_TRUE = {"1", "ON", "YES", "TRUE"}


def is_offline() -> bool:
    """Whether downloads are refused (``HF_HUB_OFFLINE`` or ``SORTKD_OFFLINE`` set)."""
    return any(os.environ.get(k, "").upper() in _TRUE for k in ("HF_HUB_OFFLINE", "SORTKD_OFFLINE"))


def _hf_cache_dir() -> str:
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    home = os.environ.get("HF_HOME") or os.path.join(Path.home(), ".cache", "huggingface")
    return os.path.join(home, "hub")


def _offline_error(name: str, where: str, down: str | None = None) -> CheckpointError:
    why = down or "downloads are off (HF_HUB_OFFLINE/SORTKD_OFFLINE)"
    return CheckpointError(
        f"pretrained weights of {name!r} are not in the local cache ({where}) and {why}; "
        "fetch them where there is a network, or pass --teacher-ckpt FILE"
    )


def _down(url: str) -> str | None:
    """Why the host of ``url`` cannot be reached (one connection within
    ``SORTKD_REMOTE_TIMEOUT``), or None: a machine without network fails at once, not
    after the download libraries' retries."""
    why = unreachable(url)
    return None if why is None else f"{urlsplit(url).netloc} cannot be reached ({why})"


def _hf_file(name: str, repo: str, filenames: list[str]) -> str:
    """The first of ``filenames`` of hub repo ``repo``: from the cache, else downloaded."""
    from huggingface_hub import constants, errors, hf_hub_download

    repo_id, _, revision = repo.partition("@")
    cache = _hf_cache_dir()
    down = None if is_offline() else _down(constants.ENDPOINT)
    offline = down is not None or is_offline()
    failed: Exception | None = None
    for filename in filenames:
        try:
            return str(
                hf_hub_download(
                    repo_id,
                    filename,
                    revision=revision or None,
                    cache_dir=cache,
                    local_files_only=offline,
                    etag_timeout=remote_timeout(),
                )
            )
        except errors.LocalEntryNotFoundError as exc:  # not cached, not reachable (or offline)
            failed = exc
        except errors.EntryNotFoundError:  # the repo has no such file
            continue
        except OSError as exc:  # permissions, disk
            raise CheckpointError(f"cannot fetch weights of {name!r}: {exc}") from exc
    if offline:
        raise _offline_error(name, f"hub repo {repo_id} under {cache}", down)
    if failed is not None:
        text = " ".join(str(failed).split())[:160]
        raise CheckpointError(f"cannot fetch weights of {name!r} from hub repo {repo_id}: {text}")
    raise CheckpointError(f"hub repo {repo_id} holds none of {', '.join(filenames)} for {name!r}")


def _url_file(name: str, url: str) -> str:
    """The file of ``url`` in the torch hub cache, downloaded there unless offline."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url.split("?")[0])
    if path.is_file():
        return str(path)
    if is_offline():
        raise _offline_error(name, str(path))
    down = _down(url)
    if down is not None:
        raise _offline_error(name, str(path), down)
    path.parent.mkdir(parents=True, exist_ok=True)
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(remote_timeout())  # urllib under torch.hub takes no timeout
    try:
        torch.hub.download_url_to_file(url, str(path), progress=False)
    except OSError as exc:
        raise CheckpointError(f"cannot download weights of {name!r} from {url}: {exc}") from exc
    finally:
        socket.setdefaulttimeout(before)
    return str(path)


def _check_classes(name: str, have: int, num_classes: int) -> None:
    if have != num_classes:
        raise ConfigError(
            f"pretrained {name!r} predicts {have} classes but the dataset has {num_classes}; "
            "dump a dataset with its classes, or fine-tune and pass --teacher-ckpt"
        )


def _timm_pretrained(name: str, num_classes: int, in_chans: int) -> tuple[nn.Module, str]:
    cfg = timm_pretrained_cfg(name)
    _check_classes(name, int(cfg.get("num_classes", 1000)), num_classes)
    if cfg.get("hf_hub_id"):
        wanted = cfg.get("hf_hub_filename")
        names = [wanted] if wanted else ["model.safetensors", "pytorch_model.bin"]
        path = _hf_file(name, str(cfg["hf_hub_id"]), names)
    elif cfg.get("url"):
        path = _url_file(name, str(cfg["url"]))
    else:
        raise CheckpointError(f"timm publishes no pretrained weights for {name!r}")
    return create_timm_model(name, num_classes, in_chans, weights_file=path), path


def _torchvision_weights(name: str) -> Any:
    import torchvision.models

    try:
        return torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError):
        raise ModelError(f"torchvision publishes no pretrained weights for {name!r}") from None


def _torchvision_pretrained(name: str, num_classes: int, in_chans: int) -> tuple[nn.Module, str]:
    import torchvision.models

    weights = _torchvision_weights(name)
    _check_classes(name, len(weights.meta["categories"]), num_classes)
    if in_chans != 3:
        raise ConfigError(f"pretrained {name!r} takes 3 channels, the dataset has {in_chans}")
    path = _url_file(name, weights.url)  # torchvision then finds it in the cache
    try:
        model: nn.Module = torchvision.models.get_model(name, weights=weights)
    except (RuntimeError, ValueError) as exc:
        raise CheckpointError(f"cannot load pretrained {name!r} from {path}: {exc}") from exc
    return model, path


def create_pretrained(name: str, num_classes: int, in_chans: int) -> tuple[nn.Module, str]:
    """``(model, weights file)`` for the pretrained weights of ``timm:NAME`` or of a
    torchvision model name (its ``DEFAULT`` weights)."""
    if is_timm_name(name):
        return _timm_pretrained(name, num_classes, in_chans)
    if name in MODELS or name not in torchvision_model_names():
        raise ModelError(
            f"--teacher-init pretrained needs a timm:NAME or a torchvision model, not {name!r} "
            "(give its weights with --teacher-ckpt)"
        )
    return _torchvision_pretrained(name, num_classes, in_chans)


def native_preprocess(
    name: str,
    model: nn.Module | None,
    pretrained: bool,
    dataset: TeacherPreprocess,
    interpolation: str | None = None,
) -> TeacherPreprocess:
    """The preprocessing ``name`` was trained with: timm's data config for ``timm:`` names,
    the weights' transforms for pretrained torchvision models, else ``dataset``'s."""
    if is_timm_name(name):
        return timm_preprocess(name, model, interpolation)
    if not pretrained or name in MODELS:
        return dataset
    t = _torchvision_weights(name).transforms()
    crop = [int(x) for x in t.crop_size]
    return TeacherPreprocess(
        mean=tuple(float(m) for m in t.mean),
        std=tuple(float(s) for s in t.std),
        input_size=(crop[0], crop[-1]),
        interpolation=interpolation or str(t.interpolation.value),
        source="torchvision",
        crop_pct=crop[0] / int(t.resize_size[0]),
    )
