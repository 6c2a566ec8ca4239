"""``sortkd-cache sweep``: a grid of students from one pass over the cache per epoch.

The grid is students x ``--loss`` x ``--logits`` x ``--seeds``; every other option is a
``train`` option that every member takes (a loss option must apply to every member's loss).
All of them are generated from the fields that declare them: the grid's
(:class:`~sortkd_cache.pipelines.configs.SweepGrid`), the sweep's (``SweepConfig``) and the
members' (the ``TrainConfig`` fields whose sweep role lets a member take them).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING, Any

import click

from sortkd_cache.cli._cmd_train import loss_option_decorators
from sortkd_cache.cli._errors import EXIT_MEMBERS_FAILED
from sortkd_cache.cli._options import config_options, emit_json
from sortkd_cache.losses import loss_options
from sortkd_cache.options import opt_of
from sortkd_cache.pipelines.common.distributed import dist_context
from sortkd_cache.pipelines.configs import TrainConfig
from sortkd_cache.pipelines.sweep import SweepConfig, SweepGrid
from sortkd_cache.runtime import compute_threads
from sortkd_cache.world import World

if TYPE_CHECKING:
    from sortkd_cache.pipelines.sweep import SweepResult

__all__ = ["commands"]

#: The train options a sweep passes to every member: the CLI fields of TrainConfig that a
#: member takes (sweep role member, shared, readers or teacher; see SWEEP_ROLES), less those
#: the grid declares with the sweep's own meaning (``--cache``, ``--data-seed``).
_MEMBER_OPTIONS = tuple(
    f.name
    for f in dataclasses.fields(TrainConfig)
    if opt_of(f).cli
    and (opt_of(f).sweep or "member") in ("member", "shared", "readers", "teacher")
    and f.name not in {g.name for g in dataclasses.fields(SweepGrid)}
)


def _with_options(f: Any) -> Any:
    f = config_options(SweepConfig, skip=("out",))(f)
    for deco in reversed(loss_option_decorators()):
        f = deco(f)
    f = config_options(TrainConfig, only=_MEMBER_OPTIONS)(f)
    f = config_options(SweepGrid)(f)
    return config_options(SweepConfig, only=("out",))(f)


@click.command("sweep")
@_with_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
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
    from sortkd_cache.pipelines.sweep import grid, sweep

    as_json = bool(kw.pop("as_json"))
    # under torchrun: cuda:LOCAL_RANK with nccl on GPUs (also for --device auto), gloo on CPU
    world = World.from_env(kw["device"] or "auto")
    kw["device"] = world.device
    g = SweepGrid(**{f.name: kw[f.name] for f in dataclasses.fields(SweepGrid)})
    members = grid(
        _member_options(kw, g), out=kw["out"], students=g.students, losses=[g.losses],
        logits=[g.kinds], seeds=g.seeds,
    )  # fmt: skip
    own = {f.name: kw[f.name] for f in dataclasses.fields(SweepConfig) if opt_of(f).cli}
    cfg = SweepConfig(members=members, **own)
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


def _member_options(kw: dict[str, Any], g: SweepGrid) -> dict[str, Any]:
    options = {k: kw[k] for k in _MEMBER_OPTIONS if kw.get(k) is not None}
    options.update(cache=g.cache, data_seed=g.data_seed)
    options["loss_options"] = {k: kw[k] for k in loss_options() if kw.get(k) is not None}
    return {k: v for k, v in options.items() if v is not None}


commands = [sweep_command]
