"""A student architecture: pooled pixels into a two-layer perceptron.

sortkd-cache calls a model factory as ``factory(num_classes=C, in_chans=K)``; it returns any
``torch.nn.Module`` mapping ``[B, K, H, W]`` images to ``[B, C]`` logits.
"""

from __future__ import annotations

import torch.nn as nn

__all__ = ["pooled_mlp"]


def pooled_mlp(num_classes: int, in_chans: int, hidden: int = 64) -> nn.Module:
    """Average-pool the image to 4x4, then a ``hidden``-unit ReLU perceptron."""
    return nn.Sequential(
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(in_chans * 16, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )
