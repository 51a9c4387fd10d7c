"""A YOLOv8n-style detector (Jocher et al., Ultralytics YOLOv8, 2023) for 640x640 inputs.

Layer for layer the "n" scale (depth 0.33, width 0.25) of the published model definition:

* backbone: Conv 3x3/2 to 16, Conv 3x3/2 to 32, C2f(32, n=1), Conv/2 to 64, C2f(64, n=2),
  Conv/2 to 128, C2f(128, n=2), Conv/2 to 256, C2f(256, n=1), SPPF(256, k=5);
* neck (PAN-FPN): nearest 2x upsampling, concatenation with P4, C2f(128); upsampling,
  concatenation with P3, C2f(64) -> P3 out; Conv/2, concatenation, C2f(128) -> P4 out; Conv/2,
  concatenation with SPPF, C2f(256) -> P5 out (neck C2f blocks without shortcut);
* head: per level, a box branch (two 3x3 Conv to 64, 1x1 to 4 x 16 distribution bins) and a
  class branch (two 3x3 Conv to 80, 1x1 to 80 classes), concatenated to 144 channels, each
  level viewed as (N, 144, H*W) and the three levels concatenated: one (N, 144, 8400) tensor.
  Box decoding (distribution focal loss, anchors) is post-processing and not part of it.

Every Conv is a bias-free convolution, batch-norm and SiLU. C2f splits its 1x1 output in two
(``chunk``), runs bottlenecks on the last part (with a residual add in the backbone), and
concatenates all parts. SPPF chains three 5x5 max pools and concatenates the four maps.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvBNAct

__all__ = ["SPPF", "C2f", "YOLOv8", "yolov8n"]

NUM_CLASSES = 80
REG_MAX = 16


def _conv(cin: int, cout: int, kernel: int = 1, stride: int = 1) -> ConvBNAct:
    return ConvBNAct(cin, cout, kernel, stride, act=nn.SiLU)


class Bottleneck(nn.Module):
    """Two 3x3 Conv, with a residual add when ``shortcut``."""

    def __init__(self, c: int, shortcut: bool) -> None:
        super().__init__()
        self.cv1 = _conv(c, c, 3)
        self.cv2 = _conv(c, c, 3)
        self.add = shortcut

    def residual_branch_norm(self) -> nn.BatchNorm2d | None:
        """The second Conv's batch-norm when this block adds a residual, else ``None``."""
        return self.cv2.norm if self.add else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x + cv2(cv1(x)) with a shortcut, else cv2(cv1(x))."""
        out: torch.Tensor = self.cv2(self.cv1(x))
        return x + out if self.add else out


class C2f(nn.Module):
    """CSP bottleneck with two convolutions: split, n bottlenecks, concatenate every part."""

    def __init__(self, cin: int, cout: int, n: int, shortcut: bool) -> None:
        super().__init__()
        self.c = cout // 2
        self.cv1 = _conv(cin, 2 * self.c)
        self.cv2 = _conv((2 + n) * self.c, cout)
        self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """cv2 of the concatenated parts."""
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        out: torch.Tensor = self.cv2(torch.cat(y, 1))
        return out


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: three chained 5x5 max pools, four maps concatenated."""

    def __init__(self, cin: int, cout: int, k: int = 5) -> None:
        super().__init__()
        self.cv1 = _conv(cin, cin // 2)
        self.cv2 = _conv(cin // 2 * 4, cout)
        self.m = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """cv2 of [x, pool(x), pool(pool(x)), pool(pool(pool(x)))] after cv1."""
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(self.m(y[-1]))
        out: torch.Tensor = self.cv2(torch.cat(y, 1))
        return out


class DetectBranch(nn.Module):
    """One level of the decoupled head: box and class branches, concatenated."""

    def __init__(self, cin: int, c_box: int, c_cls: int) -> None:
        super().__init__()
        self.box = nn.Sequential(_conv(cin, c_box, 3), _conv(c_box, c_box, 3),
                                 nn.Conv2d(c_box, 4 * REG_MAX, 1))
        self.cls = nn.Sequential(_conv(cin, c_cls, 3), _conv(c_cls, c_cls, 3),
                                 nn.Conv2d(c_cls, NUM_CLASSES, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 4 * 16 + 80, H, W)."""
        return torch.cat((self.box(x), self.cls(x)), 1)


class YOLOv8(nn.Module):
    """YOLOv8 at the "n" scale; the output is the three head levels, flattened and joined."""

    def __init__(self) -> None:
        super().__init__()
        self.b0 = _conv(3, 16, 3, 2)
        self.b1 = _conv(16, 32, 3, 2)
        self.b2 = C2f(32, 32, 1, True)
        self.b3 = _conv(32, 64, 3, 2)
        self.b4 = C2f(64, 64, 2, True)
        self.b5 = _conv(64, 128, 3, 2)
        self.b6 = C2f(128, 128, 2, True)
        self.b7 = _conv(128, 256, 3, 2)
        self.b8 = C2f(256, 256, 1, True)
        self.b9 = SPPF(256, 256)
        self.up = nn.Upsample(scale_factor=2.0, mode="nearest")
        self.n12 = C2f(384, 128, 1, False)
        self.n15 = C2f(192, 64, 1, False)
        self.n16 = _conv(64, 64, 3, 2)
        self.n18 = C2f(192, 128, 1, False)
        self.n19 = _conv(128, 128, 3, 2)
        self.n21 = C2f(384, 256, 1, False)
        c_box, c_cls = max(16, 64 // 4, 4 * REG_MAX), max(64, min(NUM_CLASSES, 100))
        self.detect = nn.ModuleList(DetectBranch(c, c_box, c_cls) for c in (64, 128, 256))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a (N, 3, 640, 640) image batch to (N, 144, 8400) raw head outputs."""
        p3 = self.b4(self.b3(self.b2(self.b1(self.b0(x)))))
        p4 = self.b6(self.b5(p3))
        p5 = self.b9(self.b8(self.b7(p4)))
        n12 = self.n12(torch.cat([self.up(p5), p4], 1))
        out3 = self.n15(torch.cat([self.up(n12), p3], 1))
        out4 = self.n18(torch.cat([self.n16(out3), n12], 1))
        out5 = self.n21(torch.cat([self.n19(out4), p5], 1))
        levels = [d(o) for d, o in zip(self.detect, (out3, out4, out5), strict=True)]
        n = x.shape[0]
        return torch.cat([lv.view(n, 4 * REG_MAX + NUM_CLASSES, -1) for lv in levels], 2)


def yolov8n() -> YOLOv8:
    """YOLOv8n-style detector at 640x640."""
    return YOLOv8()
