"""A sweep's own report: DIR/results.json, results.md and results.png.

One row per variant (a member's student, loss and logits kind: the grid point without its
seed) with the final test top-1 of each seed, their mean ± std; and per sort or swap variant
the paired difference against its raw twin (same student and loss), seed by seed. The table
is :mod:`~sortkd_cache.pipelines._seed_table`'s (the one ``run RECIPE`` prints). Members that
failed (a diverged loss) are listed under the table and left out of it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sortkd_cache.pipelines._seed_table import format_seed_table, seed_table

if TYPE_CHECKING:
    from sortkd_cache.pipelines._seed_table import SeedTable
    from sortkd_cache.pipelines.train import TrainConfig

__all__ = ["sweep_results", "variant_of", "write_sweep_results"]


def variant_of(cfg: TrainConfig) -> str:
    """``<student> <loss>[ <logits>][ top-K]``: a grid point without its seed."""
    kind = "" if cfg.loss == "ce" else f" {cfg.logits}"
    top = "" if cfg.topk is None else f" top-{cfg.topk}"
    return f"{cfg.student} {cfg.loss}{kind}{top}"


def _pairs(configs: list[TrainConfig]) -> list[tuple[str, str]]:
    """(sort or swap variant, its raw twin) for every such variant whose twin is swept."""
    names = {variant_of(c) for c in configs}
    pairs: list[tuple[str, str]] = []
    for c in configs:
        if c.loss == "ce" or c.logits == "raw":
            continue
        twin = f"{c.student} {c.loss} raw"
        pair = (variant_of(c), twin)
        if twin in names and pair not in pairs:
            pairs.append(pair)
    return pairs


def _table_json(table: SeedTable) -> dict[str, Any]:
    return {
        "variants": [
            {"variant": v.variant, "seeds": list(v.seeds), "test_top1": list(v.top1),
             "mean": v.mean, "std": v.std, "n": v.n}
            for v in table.variants
        ],
        "paired": [
            {"variant": p.variant, "baseline": p.baseline, "seeds": list(p.seeds),
             "diffs": list(p.diffs), "mean": p.mean, "std": p.std, "wins": p.wins}
            for p in table.pairs
        ],
    }  # fmt: skip


def sweep_results(
    members: dict[str, tuple[TrainConfig, dict[str, Any]]],
) -> tuple[dict[str, Any], str]:
    """(results.json data, results.md text) from ``{member: (config, its summary entry)}``."""
    done = [(c, info) for c, info in members.values() if info.get("status") == "finished"]
    records = [(variant_of(c), c.seed, float(info["final_test_top1"])) for c, info in done]
    ok = [c for c, _ in done]
    table = seed_table(records, [p for p in _pairs(ok)])
    failed = {
        n: info.get("error", "") for n, (_, info) in members.items() if info["status"] != "finished"
    }
    text = "# Sweep results\n\nFinal-epoch test top-1 per variant over its seeds; sort/swap "
    text += "against raw paired by seed.\n\n" + format_seed_table(table)
    if failed:
        text += "\nNot in the table (failed):\n\n"
        text += "".join(f"- {n}: {why}\n" for n, why in failed.items())
    return {**_table_json(table), "failed": failed}, text


def write_sweep_results(
    out: Path, members: dict[str, tuple[TrainConfig, dict[str, Any]]]
) -> tuple[dict[str, Any], str]:
    """Write DIR/results.json, results.md and results.png; (results.json data, the table)."""
    data, text = sweep_results(members)
    for name, body in (
        ("results.json", json.dumps(data, indent=2, sort_keys=True)),
        ("results.md", text),
    ):
        tmp = out / f"{name}.tmp"
        tmp.write_text(body)
        os.replace(tmp, out / name)
    _plot(data, out / "results.png")
    return data, text


def _plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants, paired = data["variants"], data["paired"]
    fig, axes = plt.subplots(1, 2 if paired else 1, figsize=(11 if paired else 6, 4), squeeze=False)
    ax = axes[0][0]
    names = [v["variant"] for v in variants]
    ax.barh(
        names, [v["mean"] for v in variants], xerr=[v["std"] for v in variants], color="#4c72b0"
    )
    for i, v in enumerate(variants):
        ax.plot(v["test_top1"], [i] * len(v["test_top1"]), "k.", ms=4)
    ax.set_xlabel("test top-1 % (mean ± std, dots: seeds)")
    ax.invert_yaxis()
    if paired:
        ax2 = axes[0][1]
        labels = [f"{p['variant']} - raw" for p in paired]
        for i, p in enumerate(paired):
            ax2.plot(p["diffs"], [i] * len(p["diffs"]), "o", color="#dd8452")
            ax2.plot([p["mean"]], [i], "k|", ms=14)
        ax2.set_yticks(range(len(labels)), labels)
        ax2.axvline(0, color="gray", lw=0.8)
        ax2.set_xlabel("paired Δ top-1 per seed (| mean)")
        ax2.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
