"""``sortkd-cache train``."""

from __future__ import annotations

import click

from sortkd_cache.cli._options import emit_json, parse_storage_options, storage_options_option

__all__ = ["commands"]


def _milestones(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated epochs, got '{value}'") from None


@click.command("train")
@click.option(
    "--cache", default=None, help="Store to train from (dir, .zip, s3://, gs://, https://)."
)
@click.option(
    "--dataset",
    default=None,
    help="Dataset SPEC: without --cache, plain CE training; "
    "with it, your copy of the data (fingerprint-checked).",
)
@click.option("--student", required=True, help="Student architecture.")
@click.option("--logits", default="raw", show_default=True, help="raw | sort | swap")
@click.option("--loss", default="kd", show_default=True, help="ce | kd | dkd | lskd | ctkd")
@click.option("--epochs", type=int, default=240, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=0.05, show_default=True)
@click.option(
    "--milestones",
    default="150,180,210",
    show_default=True,
    callback=_milestones,
    help="Epochs at which the lr is multiplied by --lr-decay.",
)
@click.option("--lr-decay", type=float, default=0.1, show_default=True)
@click.option("--weight-decay", type=float, default=5e-4, show_default=True)
@click.option("--momentum", type=float, default=0.9, show_default=True)
@click.option("--temperature", "-T", type=float, default=4.0, show_default=True)
@click.option("--ce-weight", type=float, default=0.1, show_default=True)
@click.option("--kd-weight", type=float, default=0.9, show_default=True)
@click.option("--dkd-alpha", type=float, default=1.0, show_default=True)
@click.option("--dkd-beta", type=float, default=8.0, show_default=True)
@click.option("--dkd-warmup", type=int, default=20, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--augment", default=None, help="Recipe for plain training (default: the dataset's).")
@click.option(
    "--views-order", default="cyclic", show_default=True, help="cyclic (epoch mod V) | shuffle"
)
@click.option(
    "--num-classes",
    type=int,
    default=None,
    help="Expected class count (checked against the store).",
)
@click.option(
    "--online-teacher",
    default=None,
    help="Compute teacher logits on the fly (equality checks, timing).",
)
@click.option("--teacher-ckpt", default=None, help="Weights of --online-teacher.")
@click.option("--teacher-init", default="checkpoint", show_default=True, help="checkpoint | random")
@click.option("--data-root", default=None)
@click.option("--download", is_flag=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--data-path", default="auto", show_default=True, help="auto | device | loader")
@click.option(
    "--workers", type=int, default=0, show_default=True, help="DataLoader workers (loader path)."
)
@click.option("--out", required=True, help="Run directory.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out.")
@click.option("--overwrite", is_flag=True, help="Replace a run already in --out.")
@click.option("--stop-after", type=int, default=None, hidden=True)
@click.option("--no-progress", is_flag=True)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@storage_options_option
def train_command(**kw: object) -> None:
    """Train a student from a cache (no teacher), or a model from data with CE.

    Epoch e uses stored view e mod V; the student sees exactly the augmented image the
    teacher saw, with that view's soft logits.

    \b
    Examples:
      sortkd-cache train --dataset digits --student digits_cnn_l --loss ce --epochs 30 \\
          --lr 0.05 --milestones 20,25 --out runs/teacher          # make a teacher
      sortkd-cache train --cache digits.zarr --student digits_cnn_s --logits sort --loss kd \\
          --epochs 8 --out runs/kd-sort
      sortkd-cache train --cache c100.zarr --student resnet8x4 --logits sort --loss dkd \\
          --dkd-beta 8 --out runs/r8x4-dkd-sort --device cuda
      torchrun --nproc-per-node 2 -m sortkd_cache.cli train --cache c100.zarr ...
    """
    from sortkd_cache.pipelines.distributed import backend_for, dist_context, rank_device
    from sortkd_cache.pipelines.train import TrainConfig, train

    as_json = bool(kw.pop("as_json"))
    kw["progress"] = not kw.pop("no_progress")
    kw["storage_options"] = parse_storage_options(kw.pop("storage_option")) or None  # type: ignore[arg-type]
    # under torchrun: cuda:LOCAL_RANK with nccl on GPUs (also for --device auto), gloo on CPU
    device = rank_device(str(kw["device"]))
    kw["device"] = device
    with dist_context(backend_for(device)) as (rank, _):
        result = train(TrainConfig(**kw))  # type: ignore[arg-type]
    if rank != 0:
        return
    if as_json:
        emit_json(result.to_dict())
        return
    state = "finished" if result.finished else "stopped"
    click.echo(
        f"{state} {result.epochs} epochs in {result.seconds:.1f} s: final test top-1 "
        f"{result.final_test_top1:.2f}%, best {result.best_test_top1:.2f}% -> {result.run_dir}"
    )


commands = [train_command]
