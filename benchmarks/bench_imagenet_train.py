"""Benchmark: a `train` epoch on an ImageNet-like JPEG folder against ImageFolder+DataLoader.

Data: :mod:`_imagenet_like` (JPEGs around 400 x 350, 1,000 classes, plus a val split). A
store is dumped once (random ``resnet8`` teacher, 1 view, ``imagenet:64``); then, alternating:

* ``train``: the real ``train()`` from that store, ``--loss kd`` with a ``resnet8`` student,
  1 epoch, ``--workers W`` DataLoader workers (each decodes its batch's JPEGs and replays the
  recorded crops), soft labels from the store, then the test split's evaluation (its views
  prepared once per run);
* ``baseline``: ``torchvision.datasets.ImageFolder`` with ``RandomResizedCrop(64)``, a
  ``DataLoader(num_workers=W)``, the same student, SGD with cross-entropy (no soft labels at
  all), and the same evaluation on ``val`` (``Resize(73) + CenterCrop(64)``).

``ratio`` = median train images/s over median baseline images/s (goal >= 1.0; the train side
additionally reads and applies the soft labels).

Run: ``python benchmarks/bench_imagenet_train.py [--quick] [--n N]`` prints one JSON object.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine
from _imagenet_like import bench_folder, interleaved, main_for

SIZE = 64
BATCH = 128
STUDENT = "resnet8"


def baseline(root: Path, workers: int) -> float:
    """Training images/s of one CE epoch plus the val evaluation, torchvision style."""
    from torchvision import datasets, transforms

    from sortkd_cache.models import create_model

    norm = transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    train_tf = transforms.Compose([transforms.RandomResizedCrop(SIZE), transforms.ToTensor(), norm])
    eval_tf = transforms.Compose(
        [transforms.Resize(73), transforms.CenterCrop(SIZE), transforms.ToTensor(), norm]
    )
    t0 = time.perf_counter()
    train_ds = datasets.ImageFolder(str(root / "train"), transform=train_tf)
    val_ds = datasets.ImageFolder(str(root / "val"), transform=eval_tf)
    torch.manual_seed(0)
    model = create_model(STUDENT, num_classes=len(train_ds.classes), in_chans=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    kw: dict[str, Any] = {"num_workers": workers, "prefetch_factor": 4 if workers else None}
    loader = torch.utils.data.DataLoader(train_ds, batch_size=BATCH, shuffle=True, **kw)
    model.train()
    for x, y in loader:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        for x, _y in torch.utils.data.DataLoader(val_ds, batch_size=512, **kw):
            model(x).argmax(1)
    return len(train_ds) / (time.perf_counter() - t0)


def dump_store(root: Path, out: Path) -> None:
    from sortkd_cache.pipelines.dump import DumpConfig, dump

    if (out / "zarr.json").exists():
        return
    dump(
        DumpConfig(
            dataset=f"imagefolder:{root}",
            teacher="resnet8",
            teacher_init="random",
            out=str(out),
            views=1,
            augment=f"imagenet:{SIZE}",
            device="cpu",
            progress=False,
        )
    )


def ours(root: Path, store: Path, workers: int, run_dir: Path, **extra: Any) -> float:
    from sortkd_cache.pipelines.train import TrainConfig, train

    t0 = time.perf_counter()
    train(
        TrainConfig(
            student=STUDENT,
            cache=str(store),
            dataset=f"imagefolder:{root}",
            loss="kd",
            epochs=1,
            batch_size=BATCH,
            milestones=(),
            workers=workers,
            device="cpu",
            out=str(run_dir),
            overwrite=True,
            progress=False,
            **extra,
        )
    )
    n = sum(1 for _ in (root / "train").rglob("*.JPEG"))
    return n / (time.perf_counter() - t0)


def run(quick: bool = False, n: int | None = None) -> dict[str, Any]:
    os.environ.setdefault("SORTKD_NO_PROGRESS", "1")
    n = n or (1000 if quick else 2000)
    repeats = 1 if quick else 2
    root = bench_folder(n)
    results: dict[str, Any] = {"images": n, "classes": 1000, "size": SIZE, "student": STUDENT}
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "s.zarr"
        dump_store(root, store)
        for w in (1, 2):
            results[f"workers{w}"] = interleaved(
                lambda w=w: baseline(root, w),
                lambda w=w: ours(root, store, w, Path(tmp) / "run"),
                "train",
                repeats,
            )
    results["machine"] = machine()
    return results


if __name__ == "__main__":
    main_for(run, __doc__)
