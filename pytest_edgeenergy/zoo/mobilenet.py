"""MobileNetV2 (Sandler et al., 2018), width multiplier 1.0, for 224x224 inputs.

Layer for layer as in the paper's Table 2: a 3x3/2 convolution to 32 channels, seventeen inverted
residual bottlenecks, a 1x1 convolution to 1280 channels, global average pooling, Dropout(0.2)
and Linear(1280, 1000). Every convolution is bias-free and followed by batch-norm; activations
are ReLU6 except after the linear 1x1 projection that ends each bottleneck. A bottleneck with
stride 1 and equal input/output channels adds its input to its output (ten of the seventeen do).
"""

from __future__ import annotations

from typing import Final

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias
from torch import nn

__all__ = ["INVERTED_RESIDUAL_SETTINGS", "InvertedResidual", "MobileNetV2", "mobilenet_v2"]

#: (expansion t, output channels c, repeats n, first stride s), the paper's Table 2.
INVERTED_RESIDUAL_SETTINGS: Final[tuple[tuple[int, int, int, int], ...]] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _conv_bn_relu6(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=(kernel_size - 1) // 2,
            groups=groups,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU6(),
    )


class InvertedResidual(nn.Module):
    """Expand 1x1 (not when t = 1), depthwise 3x3, linear 1x1 projection; residual if it fits."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(_conv_bn_relu6(in_channels, hidden, 1))
        layers.append(_conv_bn_relu6(hidden, hidden, 3, stride=stride, groups=hidden))
        layers.append(nn.Conv2d(hidden, out_channels, 1, bias=False))
        layers.append(nn.BatchNorm2d(out_channels))
        self.conv = nn.Sequential(*layers)

    def residual_branch_norm(self) -> nn.BatchNorm2d | None:
        """The projection's batch-norm when this block adds a residual, else ``None``."""
        if not self.use_residual:
            return None
        norm = self.conv[-1]
        assert isinstance(norm, nn.BatchNorm2d)
        return norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute x + branch(x) when the block is residual, else branch(x)."""
        out: torch.Tensor = self.conv(x)
        if self.use_residual:
            return x + out
        return out


class MobileNetV2(nn.Module):
    """MobileNetV2 with width multiplier 1.0 (all channel counts are then multiples of 8)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_relu6(3, 32, 3, stride=2)]
        in_channels = 32
        for expansion, channels, repeats, first_stride in INVERTED_RESIDUAL_SETTINGS:
            for index in range(repeats):
                stride = first_stride if index == 0 else 1
                layers.append(InvertedResidual(in_channels, channels, stride, expansion))
                in_channels = channels
        layers.append(_conv_bn_relu6(in_channels, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a (N, 3, 224, 224) image batch to (N, num_classes) logits."""
        x = self.features(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)
        out: torch.Tensor = self.classifier(x)
        return out


def mobilenet_v2(num_classes: int = 1000) -> MobileNetV2:
    """MobileNetV2 1.0 at 224x224: 3,504,872 parameters."""
    return MobileNetV2(num_classes)
