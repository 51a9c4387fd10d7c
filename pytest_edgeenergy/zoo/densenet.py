"""DenseNet-121 (Huang et al., 2017): growth rate 32, bottleneck width 4, blocks 6-12-24-16.

Stem: 7x7/2 convolution to 64 channels, batch-norm, ReLU, 3x3/2 max-pool with padding 1. Each
dense layer concatenates every earlier feature map of its block (``torch.cat`` on dim 1), then
applies BN-ReLU-Conv1x1 (to 4 x 32 = 128 channels) and BN-ReLU-Conv3x3 (to 32 channels). A
transition between blocks is BN-ReLU-Conv1x1 halving the channels, then a 2x2/2 average pool.
Head: a final batch-norm, ReLU, global average pool, flatten, Linear(1024, 1000). Convolutions
are bias-free; ReLUs inside the blocks are the functional ``F.relu`` as in common code.
"""

from __future__ import annotations

from typing import Final

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias
from torch import nn

__all__ = ["DenseBlock", "DenseLayer", "DenseNet", "Transition", "densenet121"]

DENSENET121_BLOCKS: Final[tuple[int, int, int, int]] = (6, 12, 24, 16)


class DenseLayer(nn.Module):
    """BN-ReLU-Conv1x1-BN-ReLU-Conv3x3 on the concatenation of all earlier feature maps."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Return ``growth_rate`` new channels computed from the block's features so far."""
        x = torch.cat(features, dim=1)
        x = self.conv1(F.relu(self.norm1(x)))
        out: torch.Tensor = self.conv2(F.relu(self.norm2(x)))
        return out


class DenseBlock(nn.Module):
    """``num_layers`` dense layers; returns the input and all new maps, concatenated."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(in_channels + index * growth_rate, growth_rate, bn_size)
            for index in range(num_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Grow ``x`` by ``num_layers * growth_rate`` channels."""
        features = [x]
        for layer in self.layers:
            features.append(layer(features))
        return torch.cat(features, dim=1)


class Transition(nn.Module):
    """BN-ReLU-Conv1x1 to ``out_channels``, then a 2x2/2 average pool."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Halve the spatial size (and, in DenseNet-121, the channels)."""
        out: torch.Tensor = self.pool(self.conv(self.relu(self.norm(x))))
        return out


class DenseNet(nn.Module):
    """A DenseNet-BC with the given growth rate, bottleneck width and block sizes."""

    def __init__(
        self,
        growth_rate: int = 32,
        blocks: tuple[int, ...] = DENSENET121_BLOCKS,
        init_channels: int = 64,
        bn_size: int = 4,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential()
        self.features.add_module("conv0", nn.Conv2d(3, init_channels, 7, 2, 3, bias=False))
        self.features.add_module("norm0", nn.BatchNorm2d(init_channels))
        self.features.add_module("relu0", nn.ReLU())
        self.features.add_module("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        channels = init_channels
        for index, num_layers in enumerate(blocks):
            block = DenseBlock(num_layers, channels, growth_rate, bn_size)
            self.features.add_module(f"denseblock{index + 1}", block)
            channels += num_layers * growth_rate
            if index != len(blocks) - 1:
                self.features.add_module(
                    f"transition{index + 1}", Transition(channels, channels // 2)
                )
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a (N, 3, 224, 224) image batch to (N, num_classes) logits."""
        x = F.relu(self.features(x))
        x = torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)
        out: torch.Tensor = self.classifier(x)
        return out


def densenet121(num_classes: int = 1000) -> DenseNet:
    """DenseNet-121 at 224x224: 7,978,856 parameters."""
    return DenseNet(num_classes=num_classes)
