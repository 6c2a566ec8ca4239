"""``sortkd-cache train``.

The loss options (``--temperature``, ``--dkd-beta``, ...) are generated from the losses'
registered configurations: each flag's type and help come from the loss that declares it, its
default is the chosen loss's, and a flag the chosen loss does not take is refused. The other
options take their defaults from :class:`~sortkd_cache.pipelines.train.TrainConfig`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sortkd_cache.cli._options import (
    config_options,
    emit_json,
)
from sortkd_cache.errors import ConfigError
from sortkd_cache.losses import loss_options
from sortkd_cache.pipelines.common.distributed import dist_context
from sortkd_cache.pipelines.configs import TrainConfig
from sortkd_cache.runtime import compute_threads
from sortkd_cache.world import World

__all__ = ["commands"]


def loss_option_decorators() -> list[Callable[[Any], Any]]:
    """One click option per loss option of the registry (default: the chosen loss's)."""
    out = []
    for key, per_loss in loss_options().items():
        first = next(iter(per_loss.values()))
        defaults = ", ".join(f"{loss} {info.default:g}" for loss, info in per_loss.items())
        names = [f"--{key.replace('_', '-')}"] + (["-T"] if key == "temperature" else [])
        out.append(
            click.option(
                *names,
                key,
                type=first.kind,
                default=None,
                help=f"{first.help} [only --loss {', '.join(per_loss)}; default: {defaults}]",
            )
        )
    return out


def _with_loss_options(f: Any) -> Any:
    for deco in reversed(loss_option_decorators()):
        f = deco(f)
    return f


@click.command("train")
@click.option(
    "--config",
    "config_file",
    default=None,
    help="A run's config.json to replay; options given here override it. A run recorded on "
    "another store (or dataset) is refused unless --cache (or --dataset) is given.",
)
@config_options(TrainConfig)
@_with_loss_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.pass_context
def train_command(ctx: click.Context, /, **kw: Any) -> None:
    """Train a student from a cache (no teacher), or a model from data with CE.

    Epoch e uses stored view e mod V; the student sees exactly the augmented image the
    teacher saw, with that view's soft logits. A loss option left out takes the chosen
    loss's default; one the loss does not take is refused.

    A sparse (top-K) cache (dump/copy --topk) trains the same way, for every --logits and
    --loss. The teacher row is rebuilt from its top K at the loss's temperature: at a
    recorded temperature (default 1, 2, 4; LSKD's 2) the probabilities of the kept classes,
    the label's and the tail's total are exact; the tail's mass is spread evenly over the
    dropped classes by default (--sparse-tail bucket: the loss matches its total mass only,
    and inside it the student keeps its own spread). --topk K on a dense store, or with
    --online-teacher, truncates each batch's teacher rows as `copy --topk K` would.
    Gradient error per row at most 2*T*m in L1 (m: the teacher's tail mass; `info` shows
    the fidelity). LSKD standardises with the recorded mean/std over all C (exact).
    Approximate: a temperature that is not recorded (the nearest recorded tail mass is used)
    and CTKD (its learnt temperature).

    \b
    Examples:
      sortkd-cache train --dataset digits --student digits_cnn_l --loss ce --epochs 30 \\
          --lr 0.05 --milestones 20,25 --out runs/teacher          # make a teacher
      sortkd-cache train --cache digits.zarr --student digits_cnn_s --logits sort --loss kd \\
          --epochs 8 --out runs/kd-sort
      sortkd-cache train --cache c100.zarr --student resnet8x4 --logits sort --loss dkd \\
          --dkd-beta 8 --out runs/r8x4-dkd-sort --device cuda
      sortkd-cache train --config runs/kd-sort/config.json --out runs/kd-sort-again
      sortkd-cache train --cache c100-top10.zip --student resnet8x4 --logits sort --loss kd \\
          --out runs/r8x4-kd-top10                                 # sparse cache
      sortkd-cache train --cache c100.zarr --topk 10 --student resnet8x4 --logits sort \
          --out runs/r8x4-kd-top10-dense           # dense cache truncated per batch
      torchrun --nproc-per-node 2 -m sortkd_cache.cli train --cache c100.zarr ...
    """
    from sortkd_cache.pipelines.train import train

    as_json = bool(kw.pop("as_json"))
    cfg = TrainConfig.from_dict(_collect(ctx, kw))
    # under torchrun: cuda:LOCAL_RANK with nccl on GPUs (also for --device auto), gloo on CPU
    world = World.from_env(cfg.device)
    cfg = dataclasses.replace(cfg, device=world.device)
    with compute_threads(cfg.threads), dist_context(world):
        result = train(cfg, world)
    if not world.is_main:
        return
    if as_json:
        emit_json(result.to_dict())
        return
    state = "finished" if result.finished else "stopped"
    click.echo(
        f"{state} {result.epochs} epochs in {result.seconds:.1f} s: final test top-1 "
        f"{result.final_test_top1:.2f}%, best {result.best_test_top1:.2f}% -> {result.run_dir}"
    )


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def _collect(ctx: click.Context, kw: dict[str, Any]) -> dict[str, Any]:
    """TrainConfig data: the --config file (if any), then every option given on the line."""
    config_file = kw.pop("config_file")
    storage = kw.pop("storage_options")
    loss_keys = set(loss_options())
    given = {k for k in kw if k in loss_keys and kw[k] is not None}
    flat = {k: v for k, v in kw.items() if k not in loss_keys}
    flat["storage_options"] = storage
    if config_file is None:
        return {**flat, "loss_options": {k: kw[k] for k in sorted(given)}}
    base = _read_run_config(config_file)
    recorded = base.pop("provenance", None)
    if not _given(ctx, "cache") and isinstance(recorded, dict):
        base["replay_of"] = recorded  # train refuses another store than the recorded one
    if _given(ctx, "loss") and kw["loss"] != base.get("loss"):
        base.pop("loss_options", None)  # another loss: its options start from its defaults
    out = {**base, **{k: v for k, v in flat.items() if _given(ctx, k)}}
    out["progress"] = flat["progress"]
    out["storage_options"] = storage
    out["loss_options"] = {**base.get("loss_options", {}), **{k: kw[k] for k in given}}
    for key in ("resume", "overwrite", "stop_after"):
        out[key] = flat[key]  # what to do with --out is never taken from the file
    return out


def _read_run_config(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--config '{path}': cannot read it: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config '{path}': expected a JSON object (a run's config.json)")
    for recorded in ("resolved", "storage_options", "out", "replay_of"):
        data.pop(recorded, None)
    if not isinstance(data.get("loss_options", {}), dict):
        raise ConfigError(
            f"--config '{path}': 'loss_options' must be a JSON object of the loss's options, "
            f"got {data['loss_options']!r}"
        )
    return data


commands = [train_command]
