"""``sortkd-cache dump``."""

from __future__ import annotations

import click

from sortkd_cache.cli._options import emit_json

__all__ = ["command"]


@click.command("dump")
@click.option(
    "--dataset",
    required=True,
    help="Dataset SPEC, e.g. digits, imagefolder:PATH, fake:N:C:SIZE "
    "(all kinds: sortkd-cache list datasets).",
)
@click.option(
    "--teacher",
    required=True,
    help="Teacher architecture: a registry or torchvision name (sortkd-cache list models) or "
    "timm:NAME (pip install 'sortkd-cache[timm]').",
)
@click.option(
    "--teacher-ckpt",
    type=click.Path(dir_okay=False),
    help="Weights: .safetensors or a weights-only state_dict.",
)
@click.option(
    "--teacher-init",
    type=click.Choice(["checkpoint", "pretrained", "random"]),
    default="checkpoint",
    show_default=True,
    help="'pretrained': the published weights of a timm: or torchvision model, from the local "
    "Hugging Face / torch hub cache (downloaded where online; HF_HUB_OFFLINE=1 refuses). "
    "'random' dumps an untrained teacher (tests and benchmarks). Recorded in the store.",
)
@click.option(
    "--teacher-mean",
    default=None,
    help="The teacher's normalisation mean, e.g. 0.5,0.5,0.5 [default: timm's data config, "
    "torchvision's weight transforms, else the dataset's]. Recorded.",
)
@click.option("--teacher-std", default=None, help="The teacher's std (as --teacher-mean).")
@click.option(
    "--teacher-size",
    default=None,
    help="SIZE or H,W: views are resized to it for the teacher [default: the teacher's input "
    "size; the view's own for non-timm teachers without pretrained weights].",
)
@click.option(
    "--teacher-interpolation",
    type=click.Choice(["nearest", "bilinear", "bicubic"]),
    default=None,
    help="Resize interpolation for --teacher-size [default: the teacher's].",
)
@click.option(
    "--views", type=int, default=4, show_default=True, help="Augmented views per sample (V)."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the view parameters.")
@click.option(
    "--augment",
    default=None,
    help="Augmentation recipe (default: the dataset's; names: sortkd-cache list augment).",
)
@click.option("--out", required=True, help="Store directory to write.")
@click.option("--split", default="train", show_default=True, help="Dataset split to dump.")
@click.option("--data-root", default=None, help="Where cifar10/cifar100 live.")
@click.option(
    "--download", is_flag=True, help="Let torchvision download cifar10/cifar100 into --data-root."
)
@click.option(
    "--dtype", type=click.Choice(["float16", "float32"]), default="float16", show_default=True
)
@click.option("--batch-size", type=int, default=256, show_default=True)
@click.option(
    "--chunk-samples", type=int, default=None, help="Samples per chunk (default: ~2 MiB chunks)."
)
@click.option(
    "--topk",
    type=int,
    default=None,
    help="Store sparse soft labels: per sample-view the K largest logits with their class "
    "ids, the label's logit, the row's mean/std and the tail's exact mass at the recorded "
    "temperatures (4K+14 bytes with float16, C <= 65536). No dense logits are written.",
)
@click.option(
    "--topk-temperatures",
    default=None,
    help="Temperatures at which --topk records the exact tail mass [default: 1,2,4].",
)
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda[:N]")
@click.option(
    "--precision",
    default="fp32",
    show_default=True,
    help="Teacher forward: fp32 (exact, reproducible) | bf16 | fp16 (autocast; channels_last "
    "on CUDA). fp16 needs CUDA. Recorded in the store.",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Image decoders for folder datasets (>= 1; default: CPUs, at most 8). "
    "The store does not depend on it.",
)
@click.option(
    "--decoder",
    default="pil",
    show_default=True,
    help="pil | nvjpeg: nvjpeg decodes a block's JPEGs in one batch on the GPU (CUDA, "
    "imagefolder only; its pixels can differ from PIL's by JPEG rounding; recorded).",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted dump into the same store.")
@click.option("--overwrite", is_flag=True, help="Replace an existing store.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def command(**kw: object) -> None:
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
    from sortkd_cache.pipelines.distributed import dist_context
    from sortkd_cache.pipelines.dump import DumpConfig, dump
    from sortkd_cache.world import World

    as_json = bool(kw.pop("as_json"))
    progress = not kw.pop("no_progress")
    world = World.from_env(str(kw["device"]))  # under torchrun: cuda:LOCAL_RANK
    kw["device"] = world.device
    with dist_context(world, "gloo"):  # barriers and counts only: gloo, also on GPUs
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
