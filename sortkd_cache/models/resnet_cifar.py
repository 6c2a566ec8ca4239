"""CIFAR ResNets of CRD (Tian et al., ICLR 2020) / mdistiller: ``resnet8`` ... ``resnet32x4``.

Same modules, parameter names and initialisation as CRD's ``models/resnet.py`` (so CRD and
mdistiller checkpoints load), with two generalisations: the stem takes ``in_chans``
channels, and the final pool is adaptive (identical to CRD's ``AvgPool2d(8)`` on 32x32
input), so any input of 8x8 px or more works.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["BasicBlock", "CifarResNet"]


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (projection when shapes change)."""

    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + residual)


class CifarResNet(nn.Module):
    """ResNet of depth ``6n + 2`` with BasicBlocks and stage widths ``num_filters``."""

    def __init__(
        self, depth: int, num_filters: list[int], num_classes: int, in_chans: int = 3
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 with n >= 1, got {depth}")
        n = (depth - 2) // 6
        self.inplanes = num_filters[0]
        self.conv1 = nn.Conv2d(in_chans, num_filters[0], kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(num_filters[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(num_filters[1], n)
        self.layer2 = self._make_layer(num_filters[2], n, stride=2)
        self.layer3 = self._make_layer(num_filters[3], n, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(num_filters[3] * BasicBlock.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample: nn.Module | None = None
        if stride != 1 or self.inplanes != planes * BasicBlock.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(
                    self.inplanes,
                    planes * BasicBlock.expansion,
                    kernel_size=1,
                    stride=stride,
                    bias=False,
                ),
                nn.BatchNorm2d(planes * BasicBlock.expansion),
            )
        layers: list[nn.Module] = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * BasicBlock.expansion
        layers.extend(BasicBlock(self.inplanes, planes) for _ in range(1, blocks))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(self.avgpool(x), 1)
        out: torch.Tensor = self.fc(x)
        return out


_BASE = [16, 16, 32, 64]
_X4 = [32, 64, 128, 256]


def _build(depth: int, widths: list[int], num_classes: int, in_chans: int) -> nn.Module:
    return CifarResNet(depth, widths, num_classes, in_chans)


# The factories ``(num_classes, in_chans) -> nn.Module`` the registry names
# (sortkd_cache.models._catalog declares them, with their descriptions).
resnet8 = partial(_build, 8, _BASE)
resnet14 = partial(_build, 14, _BASE)
resnet20 = partial(_build, 20, _BASE)
resnet32 = partial(_build, 32, _BASE)
resnet44 = partial(_build, 44, _BASE)
resnet56 = partial(_build, 56, _BASE)
resnet110 = partial(_build, 110, _BASE)
resnet8x4 = partial(_build, 8, _X4)
resnet32x4 = partial(_build, 32, _X4)
