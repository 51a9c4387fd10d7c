"""YOLOv2 and YOLOv2-tiny (Redmon & Farhadi, 2016), as in darknet's COCO configs, at 416x416.

Layer for layer after darknet's ``cfg/yolov2.cfg`` and ``cfg/yolov2-tiny.cfg`` (80 classes,
5 anchors: the last 1x1 convolution has 5 x (5 + 80) = 425 filters and a bias, no batch-norm, a
linear activation). Every other ``[convolutional]`` has ``batch_normalize=1``, hence no bias, and a
LeakyReLU(0.1); ``pad=1`` means "same" padding (size // 2). The ``[region]`` decoding layer is a
post-processing step on the 13x13x425 map and is not part of these modules.

YOLOv2 is the Darknet-19 backbone (its first 18 convolutions, layers 0-22 of the cfg), two more
3x3x1024 convolutions, and a passthrough: ``[route] layers=-9`` takes the 26x26x512 map of layer
16, a 1x1x64 convolution shrinks it, ``[reorg] stride=2`` turns it into 13x13x256 and ``[route]
layers=-1,-4`` concatenates that (first) with the 13x13x1024 map of layer 24. The reorg is
``nn.PixelUnshuffle(2)``: a space-to-depth with the same shapes as darknet's reorg; darknet orders
the resulting channels differently, a fixed permutation that only renames channels of the next
convolution and so is immaterial with non-pretrained weights.

YOLOv2-tiny's sixth max-pool has size 2 and stride 1 and keeps 13x13: darknet pads it on the
right and bottom with the smallest value, which is ``F.pad(x, (0, 1, 0, 1), value=-inf)``
followed by ``nn.MaxPool2d(2, 1)``.
"""

from __future__ import annotations

from typing import Final

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias
from torch import nn

__all__ = ["ConvBNLeaky", "StrideOneMaxPool", "YOLOv2", "YOLOv2Tiny", "yolov2", "yolov2_tiny"]

#: Anchors per cell x (4 box coordinates + objectness + 80 COCO classes).
COCO_OUTPUT_CHANNELS: Final[int] = 5 * (5 + 80)


class ConvBNLeaky(nn.Module):
    """A darknet ``[convolutional]`` with ``batch_normalize=1`` and ``activation=leaky``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply convolution, batch-norm and LeakyReLU(0.1)."""
        out: torch.Tensor = self.act(self.bn(self.conv(x)))
        return out


class StrideOneMaxPool(nn.Module):
    """Darknet's ``[maxpool] size=2 stride=1``: pads right and bottom with -inf, keeps H x W."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(kernel_size=2, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Max over each 2x2 window anchored at every pixel; the output has x's size."""
        out: torch.Tensor = self.pool(F.pad(x, (0, 1, 0, 1), value=float("-inf")))
        return out


def _maxpool() -> nn.MaxPool2d:
    return nn.MaxPool2d(kernel_size=2, stride=2)


class YOLOv2(nn.Module):
    """YOLOv2 (COCO): Darknet-19 backbone, passthrough with reorg, 425-channel 13x13 head."""

    def __init__(self, out_channels: int = COCO_OUTPUT_CHANNELS) -> None:
        super().__init__()
        # cfg layers 0-16: the backbone up to the 26x26x512 map the passthrough taps.
        self.stage1 = nn.Sequential(
            ConvBNLeaky(3, 32, 3),  # 0
            _maxpool(),  # 1
            ConvBNLeaky(32, 64, 3),  # 2
            _maxpool(),  # 3
            ConvBNLeaky(64, 128, 3),  # 4
            ConvBNLeaky(128, 64, 1),  # 5
            ConvBNLeaky(64, 128, 3),  # 6
            _maxpool(),  # 7
            ConvBNLeaky(128, 256, 3),  # 8
            ConvBNLeaky(256, 128, 1),  # 9
            ConvBNLeaky(128, 256, 3),  # 10
            _maxpool(),  # 11
            ConvBNLeaky(256, 512, 3),  # 12
            ConvBNLeaky(512, 256, 1),  # 13
            ConvBNLeaky(256, 512, 3),  # 14
            ConvBNLeaky(512, 256, 1),  # 15
            ConvBNLeaky(256, 512, 3),  # 16
        )
        # cfg layers 17-24: the rest of Darknet-19 and two detection convolutions, 13x13x1024.
        self.stage2 = nn.Sequential(
            _maxpool(),  # 17
            ConvBNLeaky(512, 1024, 3),  # 18
            ConvBNLeaky(1024, 512, 1),  # 19
            ConvBNLeaky(512, 1024, 3),  # 20
            ConvBNLeaky(1024, 512, 1),  # 21
            ConvBNLeaky(512, 1024, 3),  # 22
            ConvBNLeaky(1024, 1024, 3),  # 23
            ConvBNLeaky(1024, 1024, 3),  # 24
        )
        # cfg layers 25-27: route -9 (to layer 16), 1x1x64, reorg stride 2.
        self.passthrough = ConvBNLeaky(512, 64, 1)  # 26
        self.reorg = nn.PixelUnshuffle(2)  # 27
        # cfg layers 28-30: route -1,-4 (reorg then layer 24), 3x3x1024, 1x1x425 linear.
        self.head = ConvBNLeaky(64 * 4 + 1024, 1024, 3)  # 29
        self.detect = nn.Conv2d(1024, out_channels, kernel_size=1, bias=True)  # 30

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a (N, 3, 416, 416) image batch to the (N, 425, 13, 13) region-layer input."""
        fine = self.stage1(x)
        coarse = self.stage2(fine)
        routed = torch.cat([self.reorg(self.passthrough(fine)), coarse], dim=1)
        out: torch.Tensor = self.detect(self.head(routed))
        return out


class YOLOv2Tiny(nn.Module):
    """YOLOv2-tiny (COCO): nine convolutions, six max-pools (the last one stride 1)."""

    def __init__(self, out_channels: int = COCO_OUTPUT_CHANNELS) -> None:
        super().__init__()
        self.features = nn.Sequential(
            ConvBNLeaky(3, 16, 3),
            _maxpool(),
            ConvBNLeaky(16, 32, 3),
            _maxpool(),
            ConvBNLeaky(32, 64, 3),
            _maxpool(),
            ConvBNLeaky(64, 128, 3),
            _maxpool(),
            ConvBNLeaky(128, 256, 3),
            _maxpool(),
            ConvBNLeaky(256, 512, 3),
            StrideOneMaxPool(),
            ConvBNLeaky(512, 1024, 3),
            ConvBNLeaky(1024, 512, 3),
        )
        self.detect = nn.Conv2d(512, out_channels, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a (N, 3, 416, 416) image batch to the (N, 425, 13, 13) region-layer input."""
        out: torch.Tensor = self.detect(self.features(x))
        return out


def yolov2(out_channels: int = COCO_OUTPUT_CHANNELS) -> YOLOv2:
    """YOLOv2 as in darknet's ``cfg/yolov2.cfg`` (COCO), for 416x416 inputs."""
    return YOLOv2(out_channels)


def yolov2_tiny(out_channels: int = COCO_OUTPUT_CHANNELS) -> YOLOv2Tiny:
    """YOLOv2-tiny as in darknet's ``cfg/yolov2-tiny.cfg`` (COCO), for 416x416 inputs."""
    return YOLOv2Tiny(out_channels)
