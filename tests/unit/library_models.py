"""Small CNNs written the way third-party model libraries write their modules.

Written here (not copied) after the patterns of timm- and torchvision-style code: a BatchNorm
subclass that calls ``F.batch_norm`` with its own buffers and applies its activation, squeeze-
and-excitation with ``x.mean((2, 3), keepdim=True)``, "same" convolutions that pad at run time
from ``x.size()``, channel shuffles with ``view``/``transpose``, ``make_divisible``, ghost
modules that cut a concatenation with ``[:, :c]``, CSP blocks with ``chunk``, upsampling
necks, weight-standardised convolutions, layer scale. ``FAMILIES`` maps a name to a builder of a
small network of that family; each builds in eval mode with non-trivial BatchNorm statistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Channels rounded to a multiple of ``divisor``, never more than 10 % below ``v``."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class BatchNormAct2d(nn.BatchNorm2d):
    """BatchNorm and activation in one module, calling ``F.batch_norm`` with its buffers."""

    def __init__(self, num_features: int, act: type[nn.Module] | None = nn.ReLU,
                 eps: float = 1e-5) -> None:
        super().__init__(num_features, eps=eps)
        self.act = act() if act is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        x = F.batch_norm(
            x, self.running_mean if not self.training or self.track_running_stats else None,
            self.running_var if not self.training or self.track_running_stats else None,
            self.weight, self.bias, bn_training, 0.1, self.eps)
        return self.act(x)  # type: ignore[no-any-return]


def get_same_padding(size: int, k: int, s: int, d: int) -> int:
    """Total padding for TensorFlow-style "same" output size ceil(size / s)."""
    return max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)


def pad_same(x: Tensor, k: tuple[int, int], s: tuple[int, int], d: tuple[int, int],
             value: float = 0.0) -> Tensor:
    """Pad ``x`` at run time so that a window op gives TensorFlow's "same" output."""
    ih, iw = x.size()[-2:]
    ph = get_same_padding(ih, k[0], s[0], d[0])
    pw = get_same_padding(iw, k[1], s[1], d[1])
    if ph > 0 or pw > 0:
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2], value=value)
    return x


class Conv2dSame(nn.Conv2d):
    """A convolution with TensorFlow "same" padding computed from the input at run time."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
                 bias: bool = False) -> None:
        super().__init__(cin, cout, k, stride, 0, 1, groups, bias)

    def forward(self, x: Tensor) -> Tensor:
        x = pad_same(x, self.kernel_size, self.stride, self.dilation)  # type: ignore[arg-type]
        return F.conv2d(x, self.weight, self.bias, self.stride, (0, 0), self.dilation,
                        self.groups)


class MaxPool2dSame(nn.MaxPool2d):
    """Max pooling with "same" padding of -inf computed at run time."""

    def forward(self, x: Tensor) -> Tensor:
        k = (self.kernel_size, self.kernel_size)
        s = (self.stride, self.stride)
        x = pad_same(x, k, s, (1, 1), value=-float("inf"))  # type: ignore[arg-type]
        return F.max_pool2d(x, self.kernel_size, self.stride, (0, 0), 1, self.ceil_mode)


class StdConv2d(nn.Conv2d):
    """A weight-standardised convolution: the weight is normalised in ``forward``."""

    def forward(self, x: Tensor) -> Tensor:
        w = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                         training=True, momentum=0.0, eps=1e-6).reshape_as(self.weight)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


def hard_sigmoid(x: Tensor) -> Tensor:
    """Hard sigmoid written out, as some libraries do."""
    return F.relu6(x + 3.0) / 6.0


def hard_swish(x: Tensor) -> Tensor:
    """Hard swish written out."""
    return x * F.relu6(x + 3.0) / 6.0


class SqueezeExcite(nn.Module):
    """SE with ``x.mean((2, 3), keepdim=True)``, two 1x1 convs and a gate function."""

    def __init__(self, c: int, rd_ratio: float = 0.25, act: type[nn.Module] = nn.ReLU,
                 gate: Callable[[Tensor], Tensor] = torch.sigmoid) -> None:
        super().__init__()
        rd = make_divisible(c * rd_ratio, 8)
        self.conv_reduce = nn.Conv2d(c, rd, 1, bias=True)
        self.act1 = act()
        self.conv_expand = nn.Conv2d(rd, c, 1, bias=True)
        self.gate = gate

    def forward(self, x: Tensor) -> Tensor:
        x_se = x.mean((2, 3), keepdim=True)
        x_se = self.conv_reduce(x_se)
        x_se = self.act1(x_se)
        x_se = self.conv_expand(x_se)
        gated: Tensor = x * self.gate(x_se)
        return gated


class SqueezeExcitation(nn.Module):
    """SE as torchvision writes it: adaptive pool, fc1, activation, fc2, scale activation."""

    def __init__(self, c: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, c, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: Tensor) -> Tensor:
        scale: Tensor = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class LinearSE(nn.Module):
    """SE with Linear layers: pooled, viewed as (N, C), and gated with ``expand_as``."""

    def __init__(self, c: int, r: int = 4) -> None:
        super().__init__()
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(c, c // r), nn.ReLU(inplace=True), nn.Linear(c // r, c),
                                nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        b, c, _, _ = x.size()
        y = self.avg(x).view(b, c)
        y = self.fc(y).view(b, c, 1, 1)
        gated: Tensor = x * y.expand_as(x)
        return gated


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Shuffle channels across ``groups`` with view, transpose, view."""
    b, c, h, w = x.size()
    x = x.view(b, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(b, -1, h, w)


def _conv_bn(cin: int, cout: int, k: int, s: int = 1, groups: int = 1,
             act: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
                         BatchNormAct2d(cout, act))


class InvertedResidual(nn.Module):
    """MobileNetV3/EfficientNet block: expand, depthwise, SE, project; residual when it fits."""

    def __init__(self, cin: int, mid: int, cout: int, k: int, s: int,
                 act: type[nn.Module], se: nn.Module | None, same: bool = False) -> None:
        super().__init__()
        self.conv_pw = (nn.Conv2d(cin, mid, 1, bias=False) if mid != cin else nn.Identity())
        self.bn1 = BatchNormAct2d(mid, act) if mid != cin else nn.Identity()
        self.conv_dw = (Conv2dSame(mid, mid, k, s, groups=mid) if same
                        else nn.Conv2d(mid, mid, k, s, k // 2, groups=mid, bias=False))
        self.bn2 = BatchNormAct2d(mid, act)
        self.se = se if se is not None else nn.Identity()
        self.conv_pwl = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn3 = BatchNormAct2d(cout, None)
        self.has_skip = s == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.bn1(self.conv_pw(x))
        x = self.bn2(self.conv_dw(x))
        x = self.se(x)
        x = self.bn3(self.conv_pwl(x))
        if self.has_skip:
            x = x + shortcut
        return x


class Head(nn.Module):
    """Global pool, flatten, classifier: ``x.mean((2, 3))`` then Linear."""

    def __init__(self, c: int, classes: int = 10, act: type[nn.Module] = nn.Hardswish) -> None:
        super().__init__()
        self.conv_head = nn.Conv2d(c, 64, 1)
        self.act = act()
        self.fc = nn.Linear(64, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = x.mean((2, 3), keepdim=True)
        x = self.act(self.conv_head(x))
        return self.fc(x.flatten(1))  # type: ignore[no-any-return]


def mobilenetv3_like() -> nn.Module:
    """timm-style MobileNetV3: hard-swish stem, SE with hard sigmoid, hard-swish head."""
    def se(c: int) -> nn.Module:
        return SqueezeExcite(c, gate=F.hardsigmoid)

    return nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1, bias=False), BatchNormAct2d(16, nn.Hardswish),
        InvertedResidual(16, 16, 16, 3, 2, nn.ReLU, se(16)),
        InvertedResidual(16, 72, 24, 3, 2, nn.ReLU, None),
        InvertedResidual(24, 88, 24, 3, 1, nn.ReLU, None),
        InvertedResidual(24, 96, 40, 5, 2, nn.Hardswish, se(96)),
        InvertedResidual(40, 120, 40, 5, 1, nn.Hardswish, se(120)),
        Head(40))


def efficientnet_like(same: bool = False) -> nn.Module:
    """timm-style EfficientNet (``same``: the tf_ variant with run-time "same" padding)."""
    def se(c: int, cin: int) -> nn.Module:
        return SqueezeExcite(c, rd_ratio=0.25 * cin / c, act=nn.SiLU)

    stem: nn.Module = (Conv2dSame(3, 16, 3, 2) if same else nn.Conv2d(3, 16, 3, 2, 1, bias=False))
    return nn.Sequential(
        stem, BatchNormAct2d(16, nn.SiLU),
        InvertedResidual(16, 16, 16, 3, 1, nn.SiLU, se(16, 16), same),
        InvertedResidual(16, 96, 24, 3, 2, nn.SiLU, se(96, 16), same),
        InvertedResidual(24, 144, 24, 5, 1, nn.SiLU, se(144, 24), same),
        InvertedResidual(24, 144, 40, 5, 2, nn.SiLU, se(144, 24), same),
        Head(40, act=nn.SiLU))


def efficientnet_lite_like() -> nn.Module:
    """EfficientNet-Lite: ReLU6, no SE."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1, bias=False), BatchNormAct2d(16, nn.ReLU6),
        InvertedResidual(16, 16, 16, 3, 1, nn.ReLU6, None),
        InvertedResidual(16, 96, 24, 3, 2, nn.ReLU6, None),
        InvertedResidual(24, 144, 24, 5, 1, nn.ReLU6, None),
        Head(24, act=nn.ReLU6))


class _MnasBlock(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, s: int, e: int) -> None:
        super().__init__()
        mid = cin * e
        self.apply_residual = cin == cout and s == 1
        self.layers = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, k, s, k // 2, groups=mid, bias=False), nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True), nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x) + x if self.apply_residual else self.layers(x)  # type: ignore[no-any-return]


class _MnasNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
            _MnasBlock(16, 24, 3, 2, 3), _MnasBlock(24, 24, 3, 1, 3), _MnasBlock(24, 40, 5, 2, 3),
            nn.Conv2d(40, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(nn.Dropout(p=0.2, inplace=True), nn.Linear(64, 10))

    def forward(self, x: Tensor) -> Tensor:
        x = self.layers(x)
        x = x.mean([2, 3])
        return self.classifier(x)  # type: ignore[no-any-return]


def mnasnet_like() -> nn.Module:
    """torchvision-style MNASNet: ``x.mean([2, 3])`` head."""
    return _MnasNet()


class GhostModule(nn.Module):
    """Ghost module: a primary conv, cheap depthwise features, concatenated and cut to ``oup``."""

    def __init__(self, inp: int, oup: int, relu: bool = True) -> None:
        super().__init__()
        self.oup = oup
        init = math.ceil(oup / 2)
        act: type[nn.Module] = nn.ReLU if relu else nn.Identity
        self.primary_conv = nn.Sequential(nn.Conv2d(inp, init, 1, bias=False),
                                          nn.BatchNorm2d(init), act())
        self.cheap_operation = nn.Sequential(nn.Conv2d(init, init, 3, 1, 1, groups=init,
                                                       bias=False), nn.BatchNorm2d(init), act())

    def forward(self, x: Tensor) -> Tensor:
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        out = torch.cat([x1, x2], dim=1)
        return out[:, :self.oup, :, :]


class _GhostSE(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_reduce = nn.Conv2d(c, make_divisible(c // 4, 4), 1)
        self.act1 = nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv2d(make_divisible(c // 4, 4), c, 1)

    def forward(self, x: Tensor) -> Tensor:
        x_se = self.conv_expand(self.act1(self.conv_reduce(self.avg_pool(x))))
        return x * hard_sigmoid(x_se)


class _GhostBottleneck(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int, s: int, se: bool) -> None:
        super().__init__()
        self.ghost1 = GhostModule(cin, mid)
        self.conv_dw = (nn.Conv2d(mid, mid, 3, s, 1, groups=mid, bias=False) if s > 1
                        else nn.Identity())
        self.bn_dw = nn.BatchNorm2d(mid) if s > 1 else nn.Identity()
        self.se = _GhostSE(mid) if se else nn.Identity()
        self.ghost2 = GhostModule(mid, cout, relu=False)
        self.shortcut = (nn.Sequential() if cin == cout and s == 1 else nn.Sequential(
            nn.Conv2d(cin, cin, 3, s, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: Tensor) -> Tensor:
        residual = x
        x = self.ghost1(x)
        x = self.bn_dw(self.conv_dw(x))
        x = self.se(x)
        x = self.ghost2(x)
        return x + self.shortcut(residual)  # type: ignore[no-any-return]


def ghostnet_like() -> nn.Module:
    """GhostNet: ghost modules (cat then ``[:, :oup]``), SE with a written-out hard sigmoid."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
        _GhostBottleneck(16, 16, 16, 1, False), _GhostBottleneck(16, 48, 24, 2, False),
        _GhostBottleneck(24, 72, 40, 2, True), Head(40, act=nn.ReLU))


class _DepthwiseSeparable(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, s: int, se: bool) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(cin, cin, k, s, k // 2, groups=cin, bias=False)
        self.bn1 = BatchNormAct2d(cin, nn.Hardswish)
        self.se = SqueezeExcite(cin, gate=F.hardsigmoid) if se else nn.Identity()
        self.conv_pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn2 = BatchNormAct2d(cout, nn.Hardswish)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn2(self.conv_pw(self.se(self.bn1(self.conv_dw(x)))))  # type: ignore[no-any-return]


def lcnet_like() -> nn.Module:
    """PP-LCNet: depthwise-separable blocks with hard swish, SE late, 1280-style head."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1, bias=False), BatchNormAct2d(16, nn.Hardswish),
        _DepthwiseSeparable(16, 32, 3, 1, False), _DepthwiseSeparable(32, 64, 3, 2, False),
        _DepthwiseSeparable(64, 64, 5, 1, True), Head(64))


class _RegBlock(nn.Module):
    def __init__(self, cin: int, cout: int, s: int, group_width: int) -> None:
        super().__init__()
        groups = cout // group_width
        self.conv1 = _conv_bn(cin, cout, 1)
        self.conv2 = _conv_bn(cout, cout, 3, s, groups)
        self.se = SqueezeExcite(cout, rd_ratio=0.25 * cin / cout)
        self.conv3 = _conv_bn(cout, cout, 1, act=None)
        self.downsample = (_conv_bn(cin, cout, 1, s, act=None) if s > 1 or cin != cout
                           else nn.Identity())
        self.act3 = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.conv3(self.se(self.conv2(self.conv1(x))))
        return self.act3(x + self.downsample(shortcut))  # type: ignore[no-any-return]


def regnet_like() -> nn.Module:
    """RegNetY: grouped 3x3 convs, SE, residual with a projection."""
    return nn.Sequential(_conv_bn(3, 16, 3, 2), _RegBlock(16, 24, 2, 8), _RegBlock(24, 24, 1, 8),
                         _RegBlock(24, 48, 2, 8), Head(48, act=nn.ReLU))


class _ShuffleBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        branch = cout // 2
        if stride > 1:
            self.branch1: nn.Module = nn.Sequential(
                nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                nn.Conv2d(cin, branch, 1, bias=False), nn.BatchNorm2d(branch),
                nn.ReLU(inplace=True))
        else:
            self.branch1 = nn.Sequential()
        cin2 = cin if stride > 1 else branch
        self.branch2 = nn.Sequential(
            nn.Conv2d(cin2, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True),
            nn.Conv2d(branch, branch, 3, stride, 1, groups=branch, bias=False),
            nn.BatchNorm2d(branch), nn.Conv2d(branch, branch, 1, bias=False),
            nn.BatchNorm2d(branch), nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


def shufflenet_like() -> nn.Module:
    """torchvision-style ShuffleNetV2: chunk, concat, channel shuffle, ``x.mean([2, 3])``."""
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = _conv_bn(3, 24, 3, 2)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.stage2 = nn.Sequential(_ShuffleBlock(24, 48, 2), _ShuffleBlock(48, 48, 1))
            self.conv5 = _conv_bn(48, 64, 1)
            self.fc = nn.Linear(64, 10)

        def forward(self, x: Tensor) -> Tensor:
            x = self.conv5(self.stage2(self.maxpool(self.conv1(x))))
            return self.fc(x.mean([2, 3]))  # type: ignore[no-any-return]

    return Net()


class _RepBlock(nn.Module):
    """RepVGG/MobileOne training-time block: 3x3, 1x1 and identity branches added."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.rbr_dense = _conv_bn(c, c, 3, act=None)
        self.rbr_1x1 = _conv_bn(c, c, 1, act=None)
        self.rbr_identity = nn.BatchNorm2d(c)
        self.nonlinearity = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.nonlinearity(  # type: ignore[no-any-return]
            self.rbr_dense(x) + self.rbr_1x1(x) + self.rbr_identity(x))


def repvgg_like() -> nn.Module:
    """RepVGG: branches summed, then a max-pool with run-time "same" padding, StdConv."""
    return nn.Sequential(_conv_bn(3, 16, 3, 2), _RepBlock(16), MaxPool2dSame(3, 2),
                         StdConv2d(16, 24, 3, padding=1), nn.ReLU(), _RepBlock(24),
                         Head(24, act=nn.ReLU))


class _C2f(nn.Module):
    def __init__(self, cin: int, cout: int, n: int = 1) -> None:
        super().__init__()
        self.c = cout // 2
        self.cv1 = _conv_bn(cin, 2 * self.c, 1, act=nn.SiLU)
        self.cv2 = _conv_bn((2 + n) * self.c, cout, 1, act=nn.SiLU)
        self.m = nn.ModuleList(nn.Sequential(_conv_bn(self.c, self.c, 3, act=nn.SiLU),
                                             _conv_bn(self.c, self.c, 3, act=nn.SiLU))
                               for _ in range(n))

    def forward(self, x: Tensor) -> Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) + y[-1] for m in self.m)
        return self.cv2(torch.cat(y, 1))  # type: ignore[no-any-return]


class _YoloLike(nn.Module):
    """A YOLOv8-style detector: C2f, SPPF, upsampling neck, heads flattened and concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _conv_bn(3, 16, 3, 2, act=nn.SiLU)
        self.down1 = _conv_bn(16, 32, 3, 2, act=nn.SiLU)
        self.c2f1 = _C2f(32, 32)
        self.down2 = _conv_bn(32, 64, 3, 2, act=nn.SiLU)
        self.c2f2 = _C2f(64, 64)
        self.sppf_cv1 = _conv_bn(64, 32, 1, act=nn.SiLU)
        self.sppf_m = nn.MaxPool2d(5, 1, 2)
        self.sppf_cv2 = _conv_bn(128, 64, 1, act=nn.SiLU)
        self.up = nn.Upsample(None, 2, "nearest")
        self.c2f3 = _C2f(96, 32)
        self.head_p3 = nn.Conv2d(32, 9, 1)
        self.head_p4 = nn.Conv2d(64, 9, 1)

    def forward(self, x: Tensor) -> Tensor:
        p3 = self.c2f1(self.down1(self.stem(x)))
        p4 = self.c2f2(self.down2(p3))
        y = [self.sppf_cv1(p4)]
        y.extend(self.sppf_m(y[-1]) for _ in range(3))
        p4 = self.sppf_cv2(torch.cat(y, 1))
        n3 = self.c2f3(torch.cat([self.up(p4), p3], 1))
        shape = x.shape
        outs = [self.head_p3(n3), self.head_p4(p4)]
        return torch.cat([o.view(shape[0], 9, -1) for o in outs], 2)


def yolov8_like() -> nn.Module:
    """ultralytics-style YOLOv8 detector, small."""
    return _YoloLike()


class _FPNLike(nn.Module):
    """A feature pyramid with bilinear ``F.interpolate`` to a size, layer scale, GELU, Mish."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = _conv_bn(3, 16, 3, 2, act=nn.GELU)
        self.c2 = _conv_bn(16, 24, 3, 2, act=nn.Mish)
        self.lat = nn.Conv2d(16, 24, 1)
        self.gamma = nn.Parameter(torch.full((24,), 0.5))
        self.out = nn.Conv2d(24, 8, 3, padding="same")

    def forward(self, x: Tensor) -> Tensor:
        a = self.c1(x)
        b = self.c2(a)
        up = F.interpolate(b, size=a.shape[-2:], mode="bilinear", align_corners=False)
        y = torch.tanh(self.lat(a) + up * self.gamma.view(1, -1, 1, 1))
        return self.out(y.sigmoid() * y)  # type: ignore[no-any-return]


def fpn_like() -> nn.Module:
    """An FPN-style neck with bilinear resizing to a size and a layer-scale parameter."""
    return _FPNLike()


def _init(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2 / fan_in))
                if m.bias is not None:
                    m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.1 - 0.05)
            elif isinstance(m, nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.6 + 0.7)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.4 - 0.2)
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 0.75 + 0.75)
    return model.eval()


FAMILIES: dict[str, Callable[[], nn.Module]] = {
    "mobilenetv3": mobilenetv3_like,
    "efficientnet": efficientnet_like,
    "tf_efficientnet_same": lambda: efficientnet_like(same=True),
    "efficientnet_lite": efficientnet_lite_like,
    "mnasnet": mnasnet_like,
    "ghostnet": ghostnet_like,
    "lcnet": lcnet_like,
    "regnety": regnet_like,
    "shufflenetv2": shufflenet_like,
    "repvgg": repvgg_like,
    "yolov8": yolov8_like,
    "fpn": fpn_like,
}


def build(name: str) -> nn.Module:
    """The family ``name``, with deterministic weights, in eval mode."""
    return _init(FAMILIES[name]())


def linear_se_like() -> nn.Module:
    """SENet-style: SE with Linear layers, ``view`` to (N, C, 1, 1) and ``expand_as``."""
    return nn.Sequential(_conv_bn(3, 16, 3, 2), LinearSE(16), _conv_bn(16, 24, 3, 2),
                         LinearSE(24), Head(24, act=nn.ReLU))


FAMILIES["senet_linear"] = linear_se_like
