"""CIFAR VGGs with BN of CRD / mdistiller: ``vgg8``, ``vgg11``, ``vgg13``, ``vgg16``, ``vgg19``.

Same modules, parameter names and initialisation as CRD's ``models/vgg.py`` (five conv
blocks, max-pools between them, adaptive average pool, one linear classifier). Generalised
for any input of 8x8 px or more: a max-pool is skipped when the feature map is already
under 2 px on a side, and the fourth pool (which CRD applies only to 64x64 input) is
applied when the input is at least 64 px on its shorter side. On 32x32 input the network is
exactly CRD's. These names shadow torchvision's ImageNet ``vgg11`` ... ``vgg19``.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["CifarVGG"]

_CFG: dict[str, list[list[int]]] = {
    "vgg8": [[64], [128], [256], [512], [512]],
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [
        [64, 64],
        [128, 128],
        [256, 256, 256, 256],
        [512, 512, 512, 512],
        [512, 512, 512, 512],
    ],
}


def _make_block(widths: list[int], in_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in widths:
        layers += [
            nn.Conv2d(in_channels, width, kernel_size=3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        in_channels = width
    return nn.Sequential(*layers[:-1])  # the block's last ReLU is applied in forward()


def _maybe_pool(pool: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if min(x.shape[-2], x.shape[-1]) < 2:
        return x
    out: torch.Tensor = pool(x)
    return out


class CifarVGG(nn.Module):
    """VGG with batch norm for small images; ``cfg`` lists the conv widths of 5 blocks."""

    def __init__(self, cfg: list[list[int]], num_classes: int, in_chans: int = 3) -> None:
        super().__init__()
        self.block0 = _make_block(cfg[0], in_chans)
        self.block1 = _make_block(cfg[1], cfg[0][-1])
        self.block2 = _make_block(cfg[2], cfg[1][-1])
        self.block3 = _make_block(cfg[3], cfg[2][-1])
        self.block4 = _make_block(cfg[4], cfg[3][-1])
        self.pool0 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool3 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool4 = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Linear(cfg[4][-1], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        big_input = min(x.shape[-2], x.shape[-1]) >= 64
        x = _maybe_pool(self.pool0, F.relu(self.block0(x)))
        x = _maybe_pool(self.pool1, F.relu(self.block1(x)))
        x = _maybe_pool(self.pool2, F.relu(self.block2(x)))
        x = F.relu(self.block3(x))
        if big_input:
            x = _maybe_pool(self.pool3, x)
        x = F.relu(self.block4(x))
        x = torch.flatten(self.pool4(x), 1)
        out: torch.Tensor = self.classifier(x)
        return out


def _build(cfg: str, num_classes: int, in_chans: int) -> nn.Module:
    return CifarVGG(_CFG[cfg], num_classes, in_chans)


# The factories ``(num_classes, in_chans) -> nn.Module`` the registry names
# (sortkd_cache.models._catalog declares them, with their descriptions).
vgg8 = partial(_build, "vgg8")
vgg11 = partial(_build, "vgg11")
vgg13 = partial(_build, "vgg13")
vgg16 = partial(_build, "vgg16")
vgg19 = partial(_build, "vgg19")
