"""TinyCNN: a small, fast network that still has every kind of layer the partitioners handle.

Input (N, 3, 32, 32), output (N, 10). In order:

* stem: 3x3 convolution with stride 2 (3 -> 16, 32x32 -> 16x16), batch-norm, ReLU;
* 2x2/2 max-pool (8x8);
* a residual block: depthwise 3x3 convolution (``groups=16``), batch-norm, ReLU, pointwise 1x1
  convolution, batch-norm, added to the block's input (``+``), ReLU;
* two parallel branches, 1x1 (with a bias) and 3x3 (dilation 2, no BN), ReLU each, joined by
  ``torch.cat`` on channels (16 + 16 = 32);
* 2x2/2 average pool (4x4);
* 3x3 convolution 32 -> 64, batch-norm, ReLU6;
* adaptive average pool to 1x1, ``torch.flatten(x, 1)``, Dropout, Linear(64, 10).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias
from torch import nn

__all__ = ["TinyCNN", "tinycnn"]


class TinyCNN(nn.Module):
    """A ~30k-parameter CNN for 32x32 inputs exercising every supported layer kind."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, kernel_size=3, stride=2, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.depthwise = nn.Conv2d(16, 16, kernel_size=3, padding=1, groups=16, bias=False)
        self.depthwise_bn = nn.BatchNorm2d(16)
        self.pointwise = nn.Conv2d(16, 16, kernel_size=1, bias=False)
        self.pointwise_bn = nn.BatchNorm2d(16)
        self.branch_a = nn.Conv2d(16, 16, kernel_size=1, bias=True)
        self.branch_b = nn.Conv2d(16, 16, kernel_size=3, padding=2, dilation=2, bias=True)
        self.avgpool = nn.AvgPool2d(kernel_size=2, stride=2)
        self.head = nn.Conv2d(32, 64, kernel_size=3, padding=1, bias=False)
        self.head_bn = nn.BatchNorm2d(64)
        self.head_act = nn.ReLU6()
        self.global_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.1)
        self.fc = nn.Linear(64, num_classes)

    def residual_branch_norm(self) -> nn.BatchNorm2d:
        """The batch-norm that ends the residual branch, just before the add."""
        return self.pointwise_bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a (N, 3, 32, 32) batch to (N, 10) logits."""
        x = self.pool(F.relu(self.stem_bn(self.stem(x))))
        branch = F.relu(self.depthwise_bn(self.depthwise(x)))
        x = F.relu(x + self.pointwise_bn(self.pointwise(branch)))
        x = torch.cat([F.relu(self.branch_a(x)), F.relu(self.branch_b(x))], dim=1)
        x = self.head_act(self.head_bn(self.head(self.avgpool(x))))
        x = torch.flatten(self.global_pool(x), 1)
        out: torch.Tensor = self.fc(self.dropout(x))
        return out


def tinycnn(num_classes: int = 10) -> TinyCNN:
    """TinyCNN for (N, 3, 32, 32) inputs; forward takes well under a millisecond per image."""
    return TinyCNN(num_classes)
