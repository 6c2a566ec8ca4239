"""Small models for scikit-learn's 8x8 one-channel ``digits`` (10 classes), cheap on a CPU.

``digits_mlp`` and ``digits_cnn_s`` are students (about 10k and 20k parameters) and
``digits_cnn_l`` is a teacher (about 150k). Like every registered model they take any
``in_chans`` and any input of 8x8 px or more: the MLP first average-pools its input to
8x8 (the identity on digits), the CNNs end in an adaptive average pool.

``digits100_*`` are their twins for ``digits100`` (8x16, two digits side by side, 100
classes): the MLP pools to 8x16 and the CNNs pool to 1x2 (a left and a right half), so that
``17`` and ``71`` stay apart; they too take any input of 8x16 px or more.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = [
    "DigitsCNN",
    "DigitsMLP",
    "digits100_cnn_l",
    "digits100_cnn_s",
    "digits100_mlp",
    "digits_cnn_l",
    "digits_cnn_s",
    "digits_mlp",
]


class DigitsMLP(nn.Module):
    """Average-pool to 8x8, flatten, one hidden layer."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 1,
        hidden: int = 128,
        size: tuple[int, int] = (8, 8),
    ) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(size)
        self.fc1 = nn.Linear(in_chans * size[0] * size[1], hidden)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.pool(x), 1)
        out: torch.Tensor = self.fc2(self.relu(self.fc1(x)))
        return out


def _conv_bn(in_ch: int, out_ch: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    ]


class DigitsCNN(nn.Module):
    """Two conv stages (3x3 conv + BN + ReLU) split by a 2x2 max-pool, an adaptive average
    pool to ``pool`` (1x1, or 1x2 to keep left from right), then a linear head."""

    def __init__(
        self,
        stage1: list[int],
        stage2: list[int],
        num_classes: int,
        in_chans: int = 1,
        pool: tuple[int, int] = (1, 1),
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_chans
        for width in stage1:
            layers += _conv_bn(channels, width)
            channels = width
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        for width in stage2:
            layers += _conv_bn(channels, width)
            channels = width
        layers.append(nn.AdaptiveAvgPool2d(pool))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(channels * pool[0] * pool[1], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.features(x), 1)
        out: torch.Tensor = self.fc(x)
        return out


def digits_mlp(num_classes: int, in_chans: int) -> nn.Module:
    """About 9.6k parameters for 10 classes, 1 channel."""
    return DigitsMLP(num_classes, in_chans)


def digits_cnn_s(num_classes: int, in_chans: int) -> nn.Module:
    """About 19k parameters for 10 classes, 1 channel."""
    return DigitsCNN([16, 32], [48], num_classes, in_chans)


def digits_cnn_l(num_classes: int, in_chans: int) -> nn.Module:
    """About 0.2M parameters for 10 classes, 1 channel."""
    return DigitsCNN([32, 64], [128, 96], num_classes, in_chans)


def digits100_mlp(num_classes: int, in_chans: int) -> nn.Module:
    """About 29k parameters for 100 classes, 1 channel."""
    return DigitsMLP(num_classes, in_chans, size=(8, 16))


def digits100_cnn_s(num_classes: int, in_chans: int) -> nn.Module:
    """About 28k parameters for 100 classes, 1 channel."""
    return DigitsCNN([16, 32], [48], num_classes, in_chans, pool=(1, 2))


def digits100_cnn_l(num_classes: int, in_chans: int) -> nn.Module:
    """About 0.2M parameters for 100 classes, 1 channel."""
    return DigitsCNN([32, 64], [128, 96], num_classes, in_chans, pool=(1, 2))
