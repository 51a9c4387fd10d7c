"""VGG-16 and VGG-19 (Simonyan & Zisserman, 2014, configurations D and E).

Layer for layer as in the paper's Table 1: 3x3 convolutions with padding 1 and a bias, a ReLU
after each, five 2x2/2 max-pools, then the classifier FC-4096, FC-4096, FC-1000 with ReLU and
Dropout(0.5) after the first two. There is no batch-norm (the published D/E nets have none).

Unlike many implementations this one has **no** ``AdaptiveAvgPool2d((7, 7))`` before the
flatten: at the published 224x224 input the last pool already yields 7x7, so that layer would be
an identity that only adds a "global" node a spatial split would have to treat specially. The
model therefore requires a 224x224 input (another size makes the first Linear's shape mismatch).
"""

from __future__ import annotations

from typing import Final

import torch
from torch import nn

__all__ = ["VGG", "VGG16_STAGES", "VGG19_STAGES", "vgg16", "vgg19"]

#: Configuration D: (output channels, number of 3x3 convolutions) per stage; each stage ends
#: with a 2x2/2 max-pool.
VGG16_STAGES: Final[tuple[tuple[int, int], ...]] = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
#: Configuration E: a fourth convolution in each of the last three stages.
VGG19_STAGES: Final[tuple[tuple[int, int], ...]] = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))


def _features(stages: tuple[tuple[int, int], ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_channels = 3
    for out_channels, convolutions in stages:
        for _ in range(convolutions):
            layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
            layers.append(nn.ReLU())
            in_channels = out_channels
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """A VGG network: a stack of 3x3 convolutions and max-pools, then three Linear layers."""

    def __init__(self, stages: tuple[tuple[int, int], ...], num_classes: int = 1000) -> None:
        super().__init__()
        self.features = _features(stages)
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a (N, 3, 224, 224) image batch to (N, num_classes) logits."""
        out: torch.Tensor = self.classifier(self.flatten(self.features(x)))
        return out


def vgg16(num_classes: int = 1000) -> VGG:
    """VGG-16 (configuration D): 13 convolutions, 3 Linear layers, 138,357,544 parameters."""
    return VGG(VGG16_STAGES, num_classes)


def vgg19(num_classes: int = 1000) -> VGG:
    """VGG-19 (configuration E): 16 convolutions, 3 Linear layers, 143,667,240 parameters."""
    return VGG(VGG19_STAGES, num_classes)
