"""ResNet-18, -50 and -101 (He et al., 2015), "v1.5" variant, for 224x224 inputs.

Stem: 7x7/2 convolution (64 filters, no bias), batch-norm, ReLU, 3x3/2 max-pool with padding 1.
Four stages of residual blocks (64, 128, 256, 512 base widths); the first block of stages 2-4
downsamples by 2. Head: global average pool, flatten, Linear(., 1000).

* ResNet-18 uses basic blocks (two 3x3 convolutions), 2-2-2-2 of them.
* ResNet-50 / -101 use bottleneck blocks (1x1 reduce, 3x3, 1x1 expand by 4), 3-4-6-3 and
  3-4-23-3 of them. In "v1.5" the stride-2 of a downsampling bottleneck sits on the 3x3
  convolution, not on the first 1x1 as in the paper's v1.

A block whose input and output shapes differ has a projection shortcut (1x1 convolution with the
block's stride, then batch-norm). Every convolution is bias-free and followed by a batch-norm.
Each block has its own ReLU modules so every activation is a separate node in a traced graph.
"""

from __future__ import annotations

from typing import Final

import torch
from torch import nn

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet18",
    "resnet50",
    "resnet101",
]


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    """A projection shortcut when the block changes shape, else ``None`` (identity)."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch-norm, added to the (possibly projected) input."""

    expansion: Final[int] = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = _shortcut(in_channels, width, stride)
        self.relu2 = nn.ReLU()

    def residual_branch_norm(self) -> nn.BatchNorm2d:
        """The batch-norm that ends the residual branch, just before the add."""
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute relu(branch(x) + shortcut(x))."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        result: torch.Tensor = self.relu2(out + identity)
        return result


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride, v1.5), 1x1 expand by 4; added to the shortcut."""

    expansion: Final[int] = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample = _shortcut(in_channels, out_channels, stride)
        self.relu3 = nn.ReLU()

    def residual_branch_norm(self) -> nn.BatchNorm2d:
        """The batch-norm that ends the residual branch, just before the add."""
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute relu(branch(x) + shortcut(x))."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        result: torch.Tensor = self.relu3(out + identity)
        return result


class ResNet(nn.Module):
    """A ResNet: stem, four stages of ``block`` (``layers[i]`` blocks each), pool, Linear."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, int, int, int],
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_channels = 64
        stages: list[nn.Sequential] = []
        for index, (width, count) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            stride = 1 if index == 0 else 2
            blocks: list[nn.Module] = []
            for position in range(count):
                blocks.append(block(in_channels, width, stride if position == 0 else 1))
                in_channels = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a (N, 3, 224, 224) image batch to (N, num_classes) logits."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        out: torch.Tensor = self.fc(self.flatten(self.avgpool(x)))
        return out


def resnet18(num_classes: int = 1000) -> ResNet:
    """ResNet-18: basic blocks 2-2-2-2, 11,689,512 parameters."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes)


def resnet50(num_classes: int = 1000) -> ResNet:
    """ResNet-50 v1.5: bottlenecks 3-4-6-3, 25,557,032 parameters."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes)


def resnet101(num_classes: int = 1000) -> ResNet:
    """ResNet-101 v1.5: bottlenecks 3-4-23-3, 44,549,160 parameters."""
    return ResNet(Bottleneck, (3, 4, 23, 3), num_classes)
