"""`sortkd-cache train`: students from the cache (or plain CE training without one).

With ``--cache`` each epoch e trains on stored view ``e mod V`` (``--views-order shuffle``:
a seeded order per block of V epochs). Training images are that view's recorded parameters
replayed, so the student sees exactly the image the teacher saw, and the soft labels are the
store's ``raw``/``sort``/``swap`` logits of that view. ``--online-teacher`` runs the same loop
with a teacher computing the logits of the same replayed batch (and the same sort/swap per
batch): it exists to prove equality and to measure the saving. Without a cache, ``--dataset``
with ``--loss ce`` trains a model with fresh augmentation each epoch (a teacher for ``dump``).
The test split is evaluated every epoch without augmentation.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from sortkd_cache.errors import ConfigError
from sortkd_cache.pipelines._common import build_teacher, progress_bar, resolve_device
from sortkd_cache.pipelines._rundir import RunDir
from sortkd_cache.pipelines._train_config import TrainConfig
from sortkd_cache.pipelines._train_data import (
    ViewPrefetcher,
    choose_path,
    epoch_batches,
    epoch_order,
)
from sortkd_cache.pipelines._train_setup import Setup, prepare
from sortkd_cache.pipelines.distributed import is_distributed

__all__ = ["TrainConfig", "TrainResult", "train"]


@dataclass
class TrainResult:
    run_dir: str
    final_test_top1: float
    best_test_top1: float
    epochs: int
    seconds: float
    finished: bool
    step_losses: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("step_losses")
        return d


@torch.no_grad()
def evaluate(model: torch.nn.Module, s: Setup, device: torch.device, batch_size: int) -> float:
    """Top-1 (%) on the test split, no augmentation."""
    from sortkd_cache.augment import eval_view, normalize

    model.eval()
    ds = s.test
    correct = 0
    for start in range(0, len(ds), batch_size):
        idx = np.arange(start, min(len(ds), start + batch_size))
        images = ds.images(idx)
        images = (
            images.to(device)
            if isinstance(images, torch.Tensor)
            else [im.to(device) for im in images]
        )
        x = normalize(eval_view(images, s.recipe), ds.info.mean, ds.info.std)
        pred = model(x).argmax(dim=1).cpu().numpy()
        correct += int((pred == ds.labels[idx]).sum())
    model.train()
    return 100.0 * correct / max(1, len(ds))


def _soft_source(cfg: TrainConfig, s: Setup, device: torch.device, loss_needs_teacher: bool) -> Any:
    """A callable (view, x, idx) -> teacher logits on device, or None for CE-only runs."""
    if not loss_needs_teacher and cfg.online_teacher is None:
        return None
    if cfg.online_teacher is not None:
        from sortkd_cache.pipelines.dump import teacher_logits
        from sortkd_cache.sorting import get_method

        teacher, _ = build_teacher(
            cfg.online_teacher,
            s.num_classes,
            s.train.info.channels,
            ckpt=cfg.teacher_ckpt,
            init=cfg.teacher_init,
            seed=s.teacher_seed,
            device=device,
        )
        method = None if cfg.logits == "raw" else get_method(cfg.logits)
        dtype = torch.float16 if s.store is not None and s.store.meta.dtype == "float16" else None

        def online(view: int, x: torch.Tensor, idx: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            z = teacher_logits(teacher, x, x.shape[0])
            if dtype is not None:
                z = z.to(dtype)
            return method(z, y) if method is not None else z

        return online
    store = s.store
    if store is None:
        raise ConfigError(f"--loss {cfg.loss} needs --cache STORE or --online-teacher ARCH")
    from sortkd_cache.cached import read_view_logits

    fetch = ViewPrefetcher(lambda v: read_view_logits(store, cfg.logits, v), device)
    current: dict[int, torch.Tensor] = {}

    def cached(view: int, x: torch.Tensor, idx: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if view not in current:
            current.clear()
            current[view] = fetch.get(view)
        return current[view][idx]

    cached.prefetch = fetch.prefetch  # type: ignore[attr-defined]
    return cached


def _check_resume(run: RunDir, cfg: TrainConfig) -> None:
    """Refuse a --resume whose configuration differs from the stored run's (first difference)."""
    import json

    from sortkd_cache.pipelines._train_config import resume_difference

    if not run.checkpoint.exists() or not run.config.is_file():
        return
    try:
        stored = json.loads(run.config.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--resume: cannot read '{run.config}': {exc}") from None
    diff = resume_difference(stored if isinstance(stored, dict) else {}, cfg)
    if diff is not None:
        raise ConfigError(
            f"--resume: the run in '{run.path}' was started with another configuration "
            f"({diff}); resume it unchanged or train into a new --out"
        )


def train(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) one training run; see the module docstring."""
    from sortkd_cache.losses import compute_loss, make_temperature_module

    device = resolve_device(cfg.device)
    s = prepare(cfg)
    loss_cfg = cfg.loss_config()
    torch.manual_seed(cfg.seed)
    from sortkd_cache.models import create_model

    model: torch.nn.Module = create_model(cfg.student, s.num_classes, s.train.info.channels)
    temp_module = make_temperature_module(loss_cfg, device)
    model.to(device)
    params = list(model.parameters()) + (
        list(temp_module.parameters()) if temp_module is not None else []
    )
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(cfg.milestones), gamma=cfg.lr_decay)
    soft_source = _soft_source(cfg, s, device, loss_cfg.needs_teacher)
    # everything is validated and built: only now is the run directory touched
    run = RunDir(cfg.out)
    if cfg.resume:
        _check_resume(run, cfg)
    rank0 = not is_distributed() or torch.distributed.get_rank() == 0
    if rank0:
        run.prepare(resume=cfg.resume, overwrite=cfg.overwrite)
        run.write_config({**cfg.to_dict(), "resolved": s.describe()})
    rows: list[dict[str, Any]] = []
    start_epoch = 0
    state = run.load_checkpoint() if cfg.resume else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if temp_module is not None and "temperature" in state:
            temp_module.load_state_dict(state["temperature"])
        start_epoch = int(state["epoch"])
        rows = run.read_metrics()[:start_epoch]
    ddp_model = s.wrap_ddp(model, device)
    path = choose_path(s.train, device, cfg.data_path)
    labels = torch.as_tensor(np.array(s.train.labels, dtype=np.int64), device=device)
    device_images = s.train.tensor.to(device) if path == "device" else None
    step_losses: list[float] = []
    t_run = time.perf_counter()
    end_epoch = cfg.epochs if cfg.stop_after is None else min(cfg.epochs, cfg.stop_after)
    bar = progress_bar(
        (end_epoch - start_epoch) * len(s.train), "train", "img", cfg.progress and rank0
    )
    model.train()
    for epoch in range(start_epoch, end_epoch):
        t0 = time.perf_counter()
        view = s.view_for(epoch)
        params_np = s.params_for(epoch, view)
        if soft_source is not None and hasattr(soft_source, "prefetch") and epoch + 1 < end_epoch:
            soft_source.prefetch(s.view_for(epoch + 1))
        order = s.shard(epoch_order(len(s.train), cfg.seed, epoch), cfg.batch_size)
        sums = {"loss": 0.0, "correct": 0.0, "n": 0.0}
        parts_sum: dict[str, float] = {}
        for x, y, idx in epoch_batches(
            s.train,
            params_np,
            order,
            batch_size=s.local_batch(cfg.batch_size),
            recipe=s.recipe,
            device=device,
            path=path,
            workers=cfg.workers,
            device_images=device_images,
            labels=labels,
        ):
            soft = soft_source(view, x, idx, y) if soft_source is not None else None
            out = ddp_model(x)
            loss, parts = compute_loss(
                loss_cfg, out, soft, y, epoch=epoch + 1, temperature_module=temp_module
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise ConfigError(f"training diverged: loss {value} at epoch {epoch + 1}")
            step_losses.append(value)
            b = float(y.shape[0])
            sums["loss"] += value * b
            sums["correct"] += float((out.argmax(1) == y).sum())
            sums["n"] += b
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + v * b
            bar.update(int(b) * s.world)
        sched.step()
        totals = s.reduce(sums | {f"part_{k}": v for k, v in parts_sum.items()}, device)
        n = max(totals["n"], 1.0)
        test_top1 = evaluate(model, s, device, cfg.eval_batch_size) if rank0 else 0.0
        row = {
            "epoch": epoch + 1,
            "view": view,
            "loss": totals["loss"] / n,
            **{k[5:]: v / n for k, v in totals.items() if k.startswith("part_")},
            "train_top1": 100.0 * totals["correct"] / n,
            "test_top1": test_top1,
            "lr": opt.param_groups[0]["lr"],
            "seconds": time.perf_counter() - t0,
        }
        if temp_module is not None:
            row["temperature"] = temp_module.temperature()
        rows.append(row)
        if rank0:
            run.write_metrics(rows)
            ckpt = {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "epoch": epoch + 1,
            }
            if temp_module is not None:
                ckpt["temperature"] = temp_module.state_dict()
            run.save_checkpoint(ckpt)
            bar.set_postfix(epoch=epoch + 1, loss=f"{row['loss']:.3f}", test=f"{test_top1:.1f}")
    bar.close()
    seconds = time.perf_counter() - t_run
    finished = end_epoch == cfg.epochs
    final = rows[-1]["test_top1"] if rows else 0.0
    best = max((r["test_top1"] for r in rows), default=0.0)
    if rank0 and finished:
        from sortkd_cache.checkpoint import save_weights

        save_weights(model, run.weights)
        run.plot(rows, f"{cfg.student} ({cfg.loss}, logits={cfg.logits if s.store else 'none'})")
        run.write_summary(
            {
                "final_test_top1": final,
                "best_test_top1": best,
                "epochs": len(rows),
                "seconds": sum(r["seconds"] for r in rows),
                "student": cfg.student,
                "loss": cfg.loss,
                "logits": cfg.logits if s.store is not None else None,
                "cache": cfg.cache,
                "weights": run.weights.name,
            }
        )
    return TrainResult(
        run_dir=str(run.path),
        final_test_top1=final,
        best_test_top1=best,
        epochs=len(rows),
        seconds=seconds,
        finished=finished,
        step_losses=step_losses,
    )
