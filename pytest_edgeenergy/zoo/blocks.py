"""Building blocks shared by the edge CNNs of the zoo: conv-BN-activation, squeeze-and-excitation,
``make_divisible``."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ConvBNAct", "SqueezeExcitation", "make_divisible"]


def make_divisible(v: float, divisor: int = 8) -> int:
    """``v`` rounded to the nearest multiple of ``divisor``, never more than 10 % below ``v``
    (the rounding MobileNetV3 and EfficientNet use for channel counts)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNAct(nn.Sequential):
    """A bias-free convolution with "same"-style padding, batch-norm and an optional
    activation."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 act: type[nn.Module] | None = nn.ReLU) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout)]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)

    @property
    def norm(self) -> nn.BatchNorm2d:
        """The batch-norm."""
        bn = self[1]
        assert isinstance(bn, nn.BatchNorm2d)
        return bn


class SqueezeExcitation(nn.Module):
    """Global average pool, 1x1 reduce, activation, 1x1 expand, gate; the input times the gate
    (Hu et al., 2018; the form MobileNetV3 and EfficientNet use)."""

    def __init__(self, channels: int, squeeze: int, act: type[nn.Module] = nn.ReLU,
                 gate: type[nn.Module] = nn.Sigmoid) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.act = act()
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x times its per-channel gate."""
        scale: torch.Tensor = self.gate(self.fc2(self.act(self.fc1(self.avgpool(x)))))
        return scale * x
