"""``sortkd-cache sweep``: a grid of students from one pass over the cache per epoch.

The grid is students x ``--loss`` x ``--logits`` x ``--seeds``; every other option is a
``train`` option that every member takes (a loss option must apply to every member's loss).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING, Any

import click

from sortkd_cache.cli._cmd_train import loss_option_decorators
from sortkd_cache.cli._errors import EXIT_MEMBERS_FAILED
from sortkd_cache.cli._options import (
    config_options,
    emit_json,
    parse_storage_options,
    storage_options_option,
)
from sortkd_cache.losses import loss_options
from sortkd_cache.options import opt_of
from sortkd_cache.pipelines.common.distributed import dist_context
from sortkd_cache.pipelines.configs import TrainConfig
from sortkd_cache.runtime import compute_threads
from sortkd_cache.world import World

if TYPE_CHECKING:
    from sortkd_cache.pipelines.sweep import SweepResult

__all__ = ["commands"]


#: TrainConfig fields the sweep sets itself (the grid, the run directories, what to do with
#: --out) or that do not apply to a member (a sweep trains from its cache: no plain-training
#: augmentation, no online teacher); every other CLI field of train is a member option,
#: generated from its metadata as train's are.
_SWEEP_OWN = (
    "student", "out", "cache", "loss", "logits", "seed", "data_seed", "resume", "overwrite",
    "progress", "augment", "online_teacher", "teacher_ckpt", "teacher_init",
)  # fmt: skip
#: train options a sweep passes to every member when given (None: left at train's default)
_MEMBER_OPTIONS = (
    *(
        f.name
        for f in dataclasses.fields(TrainConfig)
        if opt_of(f).cli and f.name not in _SWEEP_OWN
    ),
    "data_seed",
)


def _seeds(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got '{value}'") from None


def _with_options(f: Any) -> Any:
    options = [
        *loss_option_decorators(),
        click.option("--data-seed", type=int, default=None,
                     help="Seed of the data and view order, shared by all members. [default: 0]"),
    ]  # fmt: skip
    for deco in reversed(options):
        f = deco(f)
    return config_options(TrainConfig, skip=_SWEEP_OWN)(f)


@click.command("sweep")
@click.option("--cache", required=True, help="Store every member trains from.")
@click.option("--student", "students", multiple=True, required=True, help="Repeatable.")
@click.option("--loss", "losses", default="kd", show_default=True, help="Comma-separated.")
@click.option("--logits", "kinds", default="raw", show_default=True, help="Comma-separated.")
@click.option("--seeds", default="0", show_default=True, callback=_seeds, help="Init seeds.")
@click.option(
    "--stack",
    default="auto",
    show_default=True,
    help="on: members of one architecture step as one stacked model (torch.func; each with "
    "its own torch.optim optimizer; refused for a member that draws random numbers or has "
    "SyncBatchNorm); off: one after another (each bit-identical to its solo run); auto: "
    "stacks nothing until a GPU run shows a gain (on the CPU stacking measured no faster).",
)
@_with_options
@click.option("--out", required=True, help="Sweep directory: DIR/<member>/ per member.")
@click.option("--resume", is_flag=True, help="Continue an interrupted sweep in --out.")
@click.option("--overwrite", is_flag=True, help="Replace a sweep already in --out.")
@click.option("--no-progress", is_flag=True)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@storage_options_option
def sweep_command(**kw: Any) -> None:
    """Train a grid of students from one cache, one pass over the data per epoch.

    Each batch is replayed once and its soft labels read once for every member; each member
    then takes its own step (its loss, logits kind, seed, model, optimizer) and writes
    OUT/<member>/ exactly like `train` (its config.json replays it alone with
    `train --config`). All members share the data order (--data-seed). A member whose loss
    diverges is stopped and marked failed in OUT/summary.json; the others go on, and the
    sweep exits 3 (0: every member finished; 2: bad input; 1: an error).

    \b
    Examples:
      sortkd-cache sweep --cache digits.zarr --student digits_cnn_s --loss ce,kd,dkd \\
          --logits raw,sort,swap --seeds 0,1,2 --epochs 16 --out sweeps/digits
      sortkd-cache sweep --cache c100.zarr --student resnet8x4 --student wrn_16_2 \\
          --loss kd --logits raw,sort --seeds 0,1 --stack on --device cuda --out sweeps/c100
      torchrun --nproc-per-node 2 -m sortkd_cache.cli sweep --cache c100.zarr ...
    """
    from sortkd_cache.pipelines.sweep import SweepConfig, grid, sweep

    as_json = bool(kw.pop("as_json"))
    # under torchrun: cuda:LOCAL_RANK with nccl on GPUs (also for --device auto), gloo on CPU
    world = World.from_env(kw["device"] or "auto")
    kw["device"] = world.device
    cfg = SweepConfig(
        out=kw["out"],
        members=grid(
            _member_options(kw), out=kw["out"], students=kw["students"],
            losses=[kw["losses"]], logits=[kw["kinds"]], seeds=kw["seeds"],
        ),
        stack=kw["stack"], resume=kw["resume"], overwrite=kw["overwrite"],
        progress=not kw["no_progress"],
    )  # fmt: skip
    with compute_threads(kw["threads"]), dist_context(world):
        result = sweep(cfg, world)
    failed = [n for n, info in result.members.items() if info["status"] == "failed"]
    if world.is_main:
        _print_result(result, as_json)
    if failed:  # every rank: torchrun reports the exit code of any rank
        if world.is_main:
            click.echo(
                f"error: {len(failed)} of {len(result.members)} members failed "
                f"(first: {failed[0]}); see {result.out}/summary.json",
                err=True,
            )
        sys.exit(EXIT_MEMBERS_FAILED)


def _print_result(result: SweepResult, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_dict())
        return
    for name, info in result.members.items():
        top1 = info.get("final_test_top1")
        shown = f"{top1:.2f}%" if isinstance(top1, float) else "-"
        why = f" ({info['error']})" if info.get("error") else ""
        click.echo(f"{info['status']:9s} {shown:>7s}  {name}{why}")
    click.echo(f"{len(result.members)} members in {result.seconds:.1f} s -> {result.out}\n")
    click.echo(result.table, nl=False)


def _member_options(kw: dict[str, Any]) -> dict[str, Any]:
    options = {k: kw[k] for k in _MEMBER_OPTIONS if kw.get(k) is not None}
    options["cache"] = kw["cache"]
    options["loss_options"] = {k: kw[k] for k in loss_options() if kw.get(k) is not None}
    options["storage_options"] = parse_storage_options(kw["storage_option"]) or None
    return options


commands = [sweep_command]
