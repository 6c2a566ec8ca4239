"""The test split is prepared once per run: same top-1, no decoding after preparation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sortkd_cache.augment import eval_view, get_recipe, normalize
from sortkd_cache.datasets import load_dataset
from sortkd_cache.models import create_model
from sortkd_cache.pipelines.train import _eval
from sortkd_cache.pipelines.train._eval import EvalViews


def _reference_top1(model: torch.nn.Module, ds: Any, recipe: Any, batch: int) -> float:
    """Batch-by-batch evaluation straight from the dataset (what every epoch used to do)."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(ds), batch):
            idx = np.arange(start, min(len(ds), start + batch))
            x = normalize(eval_view(ds.images(idx), recipe), ds.info.mean, ds.info.std)
            correct += int((model(x).argmax(1).numpy() == ds.labels[idx]).sum())
    return 100.0 * correct / len(ds)


def _count_decodes(ds: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = ds.images

    def images(idx: Any, *args: Any) -> Any:
        calls.append(len(np.asarray(idx).reshape(-1)))
        return original(idx, *args)

    monkeypatch.setattr(ds, "images", images)
    return calls


@pytest.mark.parametrize("fits", [True, False])
@pytest.mark.parametrize("spec", ["fake:200:10:8", "imagefolder"])
def test_prepared_views_give_the_same_top1(
    spec: str, fits: bool, jpeg_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = spec == "imagefolder"
    ds = load_dataset(f"imagefolder:{jpeg_folder}" if folder else spec, "test")
    recipe = get_recipe("imagenet:16" if folder else ds.info.default_augment)
    torch.manual_seed(0)
    model = create_model("resnet8", num_classes=ds.num_classes, in_chans=3)
    want = _reference_top1(model, ds, recipe, 7)
    if not fits:
        monkeypatch.setattr(_eval, "fits_in_memory", lambda nbytes, device: False)
    calls = _count_decodes(ds, monkeypatch)
    views = EvalViews(ds, recipe, torch.device("cpu"), batch_size=7, workers=2)
    assert views.prepared is fits
    prepared_calls = len(calls)
    model.train()
    assert views.top1(model) == views.top1(model) == want
    assert model.training  # train mode restored
    if fits:
        assert len(calls) == prepared_calls  # nothing decoded or read again
        assert views.views is not None and views.views.dtype == torch.uint8
    else:
        assert sum(calls[prepared_calls:]) == 2 * len(ds)  # decoded again at each evaluation
