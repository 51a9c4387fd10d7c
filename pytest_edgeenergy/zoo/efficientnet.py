"""EfficientNet-B0 (Tan and Le, 2019) for 224x224 inputs.

Layer for layer as in the paper's Table 1: a 3x3/2 convolution to 32 channels, sixteen MBConv
blocks in seven stages, a 1x1 convolution to 1280 channels, global average pooling, Dropout(0.2)
and Linear(1280, 1000); every activation is SiLU (swish). An MBConv block expands by 1 or 6
(1x1), convolves depthwise (3x3 or 5x5), applies squeeze-and-excitation whose reduction is a
quarter of the block's *input* channels with a sigmoid gate, and projects linearly (1x1); blocks
with stride 1 and matching channels add their input (stochastic depth is the identity in eval).
"""

from __future__ import annotations

from typing import Final

import torch
from torch import nn

from .blocks import ConvBNAct, InvertedResidual, SqueezeExcitation

__all__ = ["B0_STAGES", "EfficientNet", "efficientnet_b0", "mbconv"]

#: (expansion, kernel, first stride, input channels, output channels, repeats)
B0_STAGES: Final[tuple[tuple[int, int, int, int, int, int], ...]] = (
    (1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1),
)


def mbconv(expansion: int, kernel: int, stride: int, cin: int, cout: int) -> InvertedResidual:
    """EfficientNet's MBConv: SE reduces to a quarter of the block's input channels."""
    mid = cin * expansion
    se = SqueezeExcitation(mid, max(1, cin // 4), nn.SiLU, nn.Sigmoid)
    return InvertedResidual(cin, mid, cout, kernel, stride, nn.SiLU, se)


class EfficientNet(nn.Module):
    """EfficientNet from a stage table (B0's by default)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBNAct(3, 32, 3, 2, act=nn.SiLU)]
        for expansion, kernel, stride, cin, cout, repeats in B0_STAGES:
            for i in range(repeats):
                layers.append(mbconv(expansion, kernel, stride if i == 0 else 1,
                                     cin if i == 0 else cout, cout))
        layers.append(ConvBNAct(320, 1280, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a (N, 3, 224, 224) image batch to (N, num_classes) logits."""
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        out: torch.Tensor = self.classifier(x)
        return out


def efficientnet_b0(num_classes: int = 1000) -> EfficientNet:
    """EfficientNet-B0 at 224x224."""
    return EfficientNet(num_classes)
