"""MobileNetV3-Small and -Large (Howard et al., 2019), width 1.0, for 224x224 inputs.

Layer for layer as in the paper's Tables 1 and 2: a 3x3/2 convolution to 16 channels with
hard-swish, bottlenecks (expand 1x1 when the expansion differs from the input, depthwise kxk,
optional squeeze-and-excitation with a hard-sigmoid gate and a reduction to
``make_divisible(expansion / 4)``, linear 1x1 projection; residual when stride 1 and the channels
match), a 1x1 convolution to 576 (Small) or 960 (Large) channels with hard-swish, global average
pooling, Linear to 1024 / 1280 with hard-swish, Dropout(0.2) and Linear to 1000 classes.
"""

from __future__ import annotations

from typing import Final

import torch
from torch import nn

from .blocks import ConvBNAct, InvertedResidual, SqueezeExcitation, make_divisible

__all__ = ["LARGE", "SMALL", "MobileNetV3", "bottleneck", "mobilenet_v3_large",
           "mobilenet_v3_small"]

RE, HS = nn.ReLU, nn.Hardswish

#: (input channels, kernel, expanded channels, output channels, SE, activation, stride)
Setting = tuple[int, int, int, int, bool, type[nn.Module], int]

SMALL: Final[tuple[Setting, ...]] = (
    (16, 3, 16, 16, True, RE, 2), (16, 3, 72, 24, False, RE, 2), (24, 3, 88, 24, False, RE, 1),
    (24, 5, 96, 40, True, HS, 2), (40, 5, 240, 40, True, HS, 1), (40, 5, 240, 40, True, HS, 1),
    (40, 5, 120, 48, True, HS, 1), (48, 5, 144, 48, True, HS, 1), (48, 5, 288, 96, True, HS, 2),
    (96, 5, 576, 96, True, HS, 1), (96, 5, 576, 96, True, HS, 1),
)
LARGE: Final[tuple[Setting, ...]] = (
    (16, 3, 16, 16, False, RE, 1), (16, 3, 64, 24, False, RE, 2), (24, 3, 72, 24, False, RE, 1),
    (24, 5, 72, 40, True, RE, 2), (40, 5, 120, 40, True, RE, 1), (40, 5, 120, 40, True, RE, 1),
    (40, 3, 240, 80, False, HS, 2), (80, 3, 200, 80, False, HS, 1),
    (80, 3, 184, 80, False, HS, 1), (80, 3, 184, 80, False, HS, 1),
    (80, 3, 480, 112, True, HS, 1), (112, 3, 672, 112, True, HS, 1),
    (112, 5, 672, 160, True, HS, 2), (160, 5, 960, 160, True, HS, 1),
    (160, 5, 960, 160, True, HS, 1),
)


def bottleneck(s: Setting) -> InvertedResidual:
    """MobileNetV3's bottleneck for one row of the settings table."""
    cin, k, exp, cout, se, act, stride = s
    gate = SqueezeExcitation(exp, make_divisible(exp // 4), nn.ReLU, nn.Hardsigmoid)
    return InvertedResidual(cin, exp, cout, k, stride, act, gate if se else None)


class MobileNetV3(nn.Module):
    """MobileNetV3 from a table of bottleneck settings."""

    def __init__(self, settings: tuple[Setting, ...], last_channels: int,
                 num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBNAct(3, 16, 3, 2, act=HS)]
        layers += [bottleneck(s) for s in settings]
        final = settings[-1][3]
        layers.append(ConvBNAct(final, 6 * final, 1, act=HS))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(6 * final, last_channels), nn.Hardswish(), nn.Dropout(0.2),
            nn.Linear(last_channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a (N, 3, 224, 224) image batch to (N, num_classes) logits."""
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        out: torch.Tensor = self.classifier(x)
        return out


def mobilenet_v3_small(num_classes: int = 1000) -> MobileNetV3:
    """MobileNetV3-Small 1.0 at 224x224."""
    return MobileNetV3(SMALL, 1024, num_classes)


def mobilenet_v3_large(num_classes: int = 1000) -> MobileNetV3:
    """MobileNetV3-Large 1.0 at 224x224."""
    return MobileNetV3(LARGE, 1280, num_classes)
