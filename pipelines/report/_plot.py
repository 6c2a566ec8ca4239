"""The report's figures as PNG bytes (matplotlib, Agg; no metadata that names a URL).

* curves: test top-1 and training loss by epoch, per variant the mean over its seeds with a
  band from the lowest to the highest seed;
* paired: each paired difference, a dot per seed, its mean with the 95% interval.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["curves_png", "paired_png"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    _pyplot().close(fig)
    return buf.getvalue()


def _nan(values: list[float | None]) -> list[float]:
    return [float("nan") if v is None else v for v in values]


def curves_png(variants: list[dict[str, Any]]) -> bytes:
    """Test top-1 (left) and training loss (right) by epoch, a band over seeds."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    colors = plt.get_cmap("tab20" if len(variants) > 10 else "tab10")
    for i, v in enumerate(variants):
        c = v["curves"]
        for ax, metric in zip(axes, ("test_top1", "loss"), strict=True):
            band = c[metric]
            color = colors(i % colors.N)
            ax.plot(c["epoch"], _nan(band["mean"]), color=color, label=v["name"], lw=1.6)
            ax.fill_between(
                c["epoch"], _nan(band["low"]), _nan(band["high"]), color=color, alpha=0.2, lw=0
            )
    axes[0].set_ylabel("test top-1 (%)")
    axes[1].set_ylabel("training loss")
    for ax in axes:
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_title("test top-1: mean over seeds, band lowest..highest seed")
    axes[1].set_title("training loss: mean over seeds, band lowest..highest")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def paired_png(paired: list[dict[str, Any]]) -> bytes:
    """Each paired difference: a dot per seed, the mean with its 95% interval."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.45 * len(paired)))
    for i, p in enumerate(paired):
        ax.plot(p["diffs"], [i] * len(p["diffs"]), "k.", ms=5)
        if p["low"] is not None:
            err = [[p["mean"] - p["low"]], [p["high"] - p["mean"]]]
            ax.errorbar(p["mean"], i, xerr=err, fmt="o", color="#dd8452", capsize=4)
        else:
            ax.plot([p["mean"]], [i], "o", color="#dd8452")
    ax.axvline(0.0, color="black", lw=1)
    ax.set_yticks(range(len(paired)))
    ax.set_yticklabels([f"{p['variant']} - {p['baseline']}" for p in paired], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("paired Δ test top-1 (points): a dot per seed, mean with 95% interval")
    fig.tight_layout()
    return _png(fig)
