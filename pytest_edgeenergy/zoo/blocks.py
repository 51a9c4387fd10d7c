"""Building blocks shared by the edge CNNs of the zoo: conv-BN-activation, squeeze-and-excitation,
the inverted residual block, ``make_divisible``."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ConvBNAct", "InvertedResidual", "SqueezeExcitation", "make_divisible"]


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


class InvertedResidual(nn.Module):
    """Expand 1x1 (when ``mid`` differs from ``cin``), depthwise kxk, optional
    squeeze-and-excitation, linear 1x1 projection; residual when stride 1 and the channels match
    (MobileNetV3's bottleneck, EfficientNet's MBConv)."""

    def __init__(self, cin: int, mid: int, cout: int, kernel: int, stride: int,
                 act: type[nn.Module], se: nn.Module | None) -> None:
        super().__init__()
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if mid != cin:
            layers.append(ConvBNAct(cin, mid, 1, act=act))
        layers.append(ConvBNAct(mid, mid, kernel, stride, groups=mid, act=act))
        if se is not None:
            layers.append(se)
        self.project = ConvBNAct(mid, cout, 1, act=None)
        layers.append(self.project)
        self.block = nn.Sequential(*layers)

    def residual_branch_norm(self) -> nn.BatchNorm2d | None:
        """The projection's batch-norm when this block adds a residual, else ``None``."""
        return self.project.norm if self.use_residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x + block(x) when residual, else block(x)."""
        out: torch.Tensor = self.block(x)
        return out + x if self.use_residual else out
