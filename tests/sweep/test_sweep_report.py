"""The sweep's report names a variant by its grid point, top-K included."""

from __future__ import annotations

from sortkd_cache.pipelines._sweep_report import sweep_results
from sortkd_cache.pipelines.train import TrainConfig


def _cfg(seed: int, topk: int | None) -> TrainConfig:
    return TrainConfig(
        cache="c.zarr",
        out="o",
        student="digits_mlp",
        loss="kd",
        logits="sort",
        seed=seed,
        topk=topk,
    )


def test_a_top_k_variant_is_its_own_row() -> None:
    """``KD sort`` and ``KD sort top-10`` of one seed in one sweep (the demo's grid) are two
    rows, not two results of one variant."""
    members = {
        f"{k}-{s}": (_cfg(s, k), {"status": "finished", "final_test_top1": 50.0 + s + (k or 0)})
        for k in (None, 10)
        for s in (0, 1)
    }
    data, text = sweep_results(members)
    rows = {v["variant"]: v["test_top1"] for v in data["variants"]}
    assert rows == {"digits_mlp kd sort": [50.0, 51.0], "digits_mlp kd sort top-10": [60.0, 61.0]}
    assert "digits_mlp kd sort top-10" in text
