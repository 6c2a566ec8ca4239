"""GPU data-path checks (run on a GPU machine; prints one JSON object).

- the device path (images kept in GPU memory, views replayed there) and the loader path
  (DataLoader workers, pinned memory, non-blocking copies) give the same batches;
- cached KD on the GPU equals the online teacher on the same replayed batches;
- sort_logits on CUDA equals the CPU kernel bit for bit on the shared reference cases.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch


def main() -> dict[str, Any]:
    from sortkd_cache.data import EpochBatches
    from sortkd_cache.pipelines.dump import DumpConfig, dump
    from sortkd_cache.pipelines.sort import SortConfig, sort_store
    from sortkd_cache.pipelines.train import TrainConfig, train
    from sortkd_cache.sorting import sort_logits, swap_logits
    from sortkd_cache.store import open_store

    cuda = torch.cuda.is_available()
    out: dict[str, Any] = {"device": torch.cuda.get_device_name(0) if cuda else "cpu"}
    dev = torch.device("cuda" if cuda else "cpu")
    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    try:
        path = tmp / "s.zarr"
        dump(
            DumpConfig(
                dataset="fake:2048:100:32" if cuda else "fake:256:100:16",
                teacher="resnet8x4",
                teacher_init="random",
                views=2,
                dtype="float32",
                out=str(path),
                progress=False,
                device=dev.type,
            )
        )
        sort_store(SortConfig(store=str(path), progress=False))
        store = open_store(path)
        kw: dict[str, Any] = dict(batch_size=256, device=dev)
        a = list(EpochBatches.from_store(store, "sort", path="device", **kw).epoch(1))
        b = list(EpochBatches.from_store(store, "sort", path="loader", workers=4, **kw).epoch(1))
        out["device_vs_loader_batches_equal"] = all(
            all(torch.equal(u, v) for u, v in zip(p, q, strict=True))
            for p, q in zip(a, b, strict=True)
        )
        common = dict(
            cache=str(path),
            student="resnet8",
            epochs=2,
            milestones=(),
            batch_size=128,
            progress=False,
            device=dev.type,
            logits="sort",
            loss="kd",
        )
        c = train(TrainConfig(out=str(tmp / "cached"), **common))
        o = train(
            TrainConfig(
                out=str(tmp / "online"), online_teacher="resnet8x4", teacher_init="random", **common
            )
        )
        x, y = np.asarray(c.step_losses), np.asarray(o.step_losses)
        out["cached_vs_online_max_rel_loss_diff"] = float(np.max(np.abs(x - y) / np.abs(y)))
        ref_path = Path(__file__).resolve().parents[1] / "tests" / "data" / "sort_cases.npz"
        ref = np.load(ref_path)
        ok = True
        for key in ref.files:
            if not key.endswith("_logits"):
                continue
            case = key[: -len("_logits")]
            z = torch.from_numpy(ref[key]).to(dev)
            lab = torch.from_numpy(ref[f"{case}_labels"]).to(dev)
            for name, fn in (("sort", sort_logits), ("swap", swap_logits)):
                got = fn(z, lab).cpu().numpy()
                ok &= got.tobytes() == ref[f"{case}_{name}"].tobytes()
        out["cuda_kernels_match_reference"] = bool(ok)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
    sys.exit(0)
