"""``sortkd-cache dump``."""

from __future__ import annotations

import click

from sortkd_cache.cli._options import config_options, emit_json, threads_option
from sortkd_cache.pipelines.common.distributed import dist_context
from sortkd_cache.pipelines.configs import DumpConfig
from sortkd_cache.runtime import compute_threads
from sortkd_cache.world import World

__all__ = ["command"]


@click.command("dump")
@config_options(DumpConfig)
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def command(threads: int | None, **kw: object) -> None:
    """Run the teacher once over V augmented views per sample; store raw logits.

    \b
    Examples:
      sortkd-cache dump --dataset digits --teacher digits_cnn_l \\
          --teacher-ckpt runs/teacher/model.safetensors --views 8 --seed 0 --out digits.zarr
      sortkd-cache dump --dataset cifar100 --data-root ~/data --teacher resnet32x4 \\
          --teacher-ckpt resnet32x4.pth --views 16 --augment cifar --out c100.zarr --device cuda
      sortkd-cache dump ... --out c100.zarr --resume      # after an interruption
      sortkd-cache dump ... --topk 10 --out c100-top10.zarr   # sparse: 4K+14 B per view
      torchrun --nproc-per-node 4 -m sortkd_cache.cli dump ...   # scale out
    """
    from sortkd_cache.pipelines.dump import dump

    as_json = bool(kw.pop("as_json"))
    progress = bool(kw.pop("progress"))
    world = World.from_env(str(kw["device"]))  # under torchrun: cuda:LOCAL_RANK
    kw["device"] = world.device
    # barriers and counts only: gloo, also on GPUs
    with compute_threads(threads), dist_context(world, "gloo"):
        kw.update(progress=progress and world.is_main, rank=world.rank, world_size=world.size)
        cfg = DumpConfig(**kw)  # type: ignore[arg-type]
        result = dump(cfg)
    if not world.is_main:
        return
    if as_json:
        emit_json(result.to_dict())
        return
    acc = ", ".join(f"{a:.3f}" for a in result.teacher_accuracy)
    click.echo(
        f"dumped {result.units_written} chunks ({result.units_skipped} already done) into "
        f"{result.store} in {result.seconds:.1f} s ({result.samples_per_second:.0f} img/s); "
        f"teacher train-view accuracy per view: [{acc}]"
    )
