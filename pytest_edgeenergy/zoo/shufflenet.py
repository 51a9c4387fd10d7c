"""ShuffleNetV2 1.0x (Ma et al., 2018) for 224x224 inputs.

Layer for layer as in the paper's Table 5: a 3x3/2 convolution to 24 channels, a 3x3/2 max pool,
three stages of 4, 8 and 4 units with 116, 232 and 464 channels, a 1x1 convolution to 1024
channels, global average pooling (``x.mean([2, 3])``) and Linear(1024, 1000). A stride-1 unit
splits its channels in two (``chunk``), transforms one half (1x1, depthwise 3x3, 1x1) and
concatenates it with the other; a stride-2 unit transforms the input by two branches. Every unit
ends with a channel shuffle of two groups (view, transpose, view).
"""

from __future__ import annotations

from typing import Final

import torch
from torch import nn

from .blocks import ConvBNAct

__all__ = ["STAGES", "ShuffleNetV2", "ShuffleUnit", "channel_shuffle", "shufflenet_v2"]

#: (repeats, output channels) of stages 2, 3 and 4 for the 1.0x model.
STAGES: Final[tuple[tuple[int, int], ...]] = ((4, 116), (8, 232), (4, 464))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups."""
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(n, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2's unit: split or two branches, concatenation, channel shuffle."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = cout // 2
        if stride > 1:
            self.branch1: nn.Module = nn.Sequential(
                ConvBNAct(cin, cin, 3, stride, groups=cin, act=None),
                ConvBNAct(cin, half, 1))
        else:
            self.branch1 = nn.Identity()
        first = cin if stride > 1 else half
        self.branch2 = nn.Sequential(
            ConvBNAct(first, half, 1),
            ConvBNAct(half, half, 3, stride, groups=half, act=None),
            ConvBNAct(half, half, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Both halves concatenated, then shuffled."""
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """ShuffleNetV2 1.0x."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(3, 24, 3, 2)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        units: list[nn.Module] = []
        cin = 24
        for repeats, cout in STAGES:
            units.append(ShuffleUnit(cin, cout, 2))
            units += [ShuffleUnit(cout, cout, 1) for _ in range(repeats - 1)]
            cin = cout
        self.stages = nn.Sequential(*units)
        self.conv5 = ConvBNAct(cin, 1024, 1)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a (N, 3, 224, 224) image batch to (N, num_classes) logits."""
        x = self.conv5(self.stages(self.maxpool(self.conv1(x))))
        out: torch.Tensor = self.fc(x.mean([2, 3]))
        return out


def shufflenet_v2(num_classes: int = 1000) -> ShuffleNetV2:
    """ShuffleNetV2 1.0x at 224x224."""
    return ShuffleNetV2(num_classes)
