"""Random CNNs for property-based tests: a hypothesis strategy and the model it describes.

``cnn_specs()`` draws a :class:`CNNSpec`: an input shape and a list of blocks (convolutions with
random kernel 1-7, stride 1-3, padding, dilation, groups including depthwise, optional
BatchNorm and activation; max/avg pools with ceil_mode; residual blocks with an add; two-branch
blocks joined by a channel concat; YOLO's reorg; constant padding; the ops of modern edge CNNs:
squeeze-and-excitation gates (a global mean or max, a 1x1 MLP, a broadcast multiply), nearest
and bilinear upsampling by a scale or to a size, channel shuffles written as view-transpose-view,
ShuffleNet/CSP channel splits with ``chunk`` and a concat, GELU, Mish, Tanh and hard sigmoid),
then optionally a head of adaptive pooling, flatten and Linear. Every block keeps the feature
map at least 1x1, so every drawn spec builds and runs. ``RandomCNN(spec)`` is the model, with
deterministic weights and non-trivial BatchNorm statistics, traceable by torch.fx.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from hypothesis import strategies as st
from torch import Tensor, nn

ACTIVATIONS = ("relu", "relu6", "leaky_relu", "silu", "hardswish", "sigmoid", "hardsigmoid",
               "gelu", "mish", "tanh", "none")


@dataclass(frozen=True)
class Block:
    """One block of a random CNN; ``kind`` says which fields matter."""

    kind: str  # conv, pool, residual, concat, reorg, pad, se, upsample, shuffle, split
    out_channels: int = 0
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    bias: bool = True
    bn: bool = False
    act: str = "none"
    pool: str = "max"
    ceil_mode: bool = False
    count_include_pad: bool = True
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)


@dataclass(frozen=True)
class CNNSpec:
    """A random CNN: input shape, blocks, optional Linear head."""

    input_shape: tuple[int, int, int, int]
    blocks: tuple[Block, ...]
    head: int = 0  # output features of the Linear head; 0: no head
    head_pool: int = 0  # adaptive pool size before the head; 0: flatten directly
    seed: int = 0
    notes: dict[str, Any] = field(default_factory=dict, compare=False)


def _window_out(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    span = size + 2 * p - d * (k - 1) - 1
    if span < 0:
        return 0
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + p:  # PyTorch: the last window must start in the input
        out -= 1
    return out


def _act(name: str) -> nn.Module:
    return {
        "relu": nn.ReLU(), "relu6": nn.ReLU6(), "leaky_relu": nn.LeakyReLU(0.1), "silu": nn.SiLU(),
        "hardswish": nn.Hardswish(), "sigmoid": nn.Sigmoid(), "hardsigmoid": nn.Hardsigmoid(),
        "gelu": nn.GELU(), "mish": nn.Mish(), "tanh": nn.Tanh(), "none": nn.Identity(),
    }[name]


class _ConvUnit(nn.Module):
    def __init__(self, cin: int, b: Block) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, b.out_channels, b.kernel, b.stride, b.padding, b.dilation,
                              b.groups, bias=b.bias)
        self.bn: nn.Module = nn.BatchNorm2d(b.out_channels) if b.bn else nn.Identity()
        self.act = _act(b.act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))  # type: ignore[no-any-return]


class _Residual(nn.Module):
    def __init__(self, c: int, b: Block) -> None:
        super().__init__()
        pad = b.dilation * (b.kernel - 1) // 2
        self.body = _ConvUnit(c, Block("conv", c, b.kernel, 1, pad, b.dilation, b.groups, b.bias,
                                       b.bn, b.act))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.body(x) + x)


class _Concat(nn.Module):
    def __init__(self, cin: int, b: Block) -> None:
        super().__init__()
        self.a = _ConvUnit(cin, Block("conv", b.out_channels, 1, 1, 0, 1, 1, b.bias, b.bn, b.act))
        pad = b.dilation * (b.kernel - 1) // 2
        self.b = _ConvUnit(cin, Block("conv", b.out_channels, b.kernel, 1, pad, b.dilation, 1,
                                      b.bias, False, "relu"))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.a(x), self.b(x)], dim=1)


class _SqueezeExcite(nn.Module):
    """x times a per-channel gate from its global mean (``pool='avg'``) or max."""

    def __init__(self, c: int, b: Block) -> None:
        super().__init__()
        self.mode = b.pool
        hidden = max(1, c // 2)
        self.reduce = nn.Conv2d(c, hidden, 1)
        self.expand = nn.Conv2d(hidden, c, 1)
        self.gate = _act(b.act)

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean((2, 3), keepdim=True) if self.mode == "avg" else x.amax((2, 3), keepdim=True)
        return x * self.gate(self.expand(F.relu(self.reduce(s))))  # type: ignore[no-any-return]


class _Upsample(nn.Module):
    """F.interpolate by an integer scale (``stride``) or to a size (``pads[:2]``)."""

    def __init__(self, b: Block) -> None:
        super().__init__()
        self.mode = b.pool
        self.scale = b.stride
        self.size = b.pads[:2] if b.ceil_mode else None

    def forward(self, x: Tensor) -> Tensor:
        corners = False if self.mode == "bilinear" else None
        if self.size is not None:
            return F.interpolate(x, size=self.size, mode=self.mode, align_corners=corners)
        return F.interpolate(x, scale_factor=self.scale, mode=self.mode, align_corners=corners)


class _Shuffle(nn.Module):
    def __init__(self, b: Block) -> None:
        super().__init__()
        self.groups = b.groups

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.size()
        x = x.view(n, self.groups, c // self.groups, h, w)
        return torch.transpose(x, 1, 2).contiguous().view(n, c, h, w)


class _Split(nn.Module):
    """ShuffleNetV2/CSP: chunk the channels in two, transform the second half, concatenate."""

    def __init__(self, c: int, b: Block) -> None:
        super().__init__()
        second = c - (c + 1) // 2
        pad = (b.kernel - 1) // 2
        self.branch = _ConvUnit(second, Block("conv", second, b.kernel, 1, pad, 1, second,
                                              b.bias, b.bn, b.act))

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return torch.cat((x1, self.branch(x2)), dim=1)


class RandomCNN(nn.Module):
    """The model a :class:`CNNSpec` describes (eval mode, deterministic weights)."""

    def __init__(self, spec: CNNSpec) -> None:
        super().__init__()
        self.spec = spec
        c = spec.input_shape[1]
        mods: list[nn.Module] = []
        for b in spec.blocks:
            if b.kind == "conv":
                mods.append(_ConvUnit(c, b))
                c = b.out_channels
            elif b.kind == "pool":
                if b.pool == "max":
                    mods.append(nn.MaxPool2d(b.kernel, b.stride, b.padding, b.dilation,
                                             ceil_mode=b.ceil_mode))
                else:
                    mods.append(nn.AvgPool2d(b.kernel, b.stride, b.padding, b.ceil_mode,
                                             b.count_include_pad))
            elif b.kind == "residual":
                mods.append(_Residual(c, b))
            elif b.kind == "concat":
                mods.append(_Concat(c, b))
                c = 2 * b.out_channels
            elif b.kind == "reorg":
                mods.append(nn.PixelUnshuffle(b.stride))
                c *= b.stride * b.stride
            elif b.kind == "pad":
                mods.append(nn.ConstantPad2d(b.pads, 0.0))
            elif b.kind == "se":
                mods.append(_SqueezeExcite(c, b))
            elif b.kind == "upsample":
                mods.append(_Upsample(b))
            elif b.kind == "shuffle":
                mods.append(_Shuffle(b))
            elif b.kind == "split":
                mods.append(_Split(c, b))
            else:
                raise ValueError(f"unknown block kind {b.kind!r}")
        self.body = nn.Sequential(*mods)
        self.pool: nn.Module = (nn.AdaptiveAvgPool2d(spec.head_pool) if spec.head_pool
                                else nn.Identity())
        self.flatten_head = spec.head > 0
        self.fc: nn.Module = nn.Identity()
        if spec.head:
            self.fc = nn.Linear(spec.notes["head_in"], spec.head)
        g = torch.Generator().manual_seed(spec.seed)
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Conv2d | nn.Linear):
                    fan_in = m.weight[0].numel()
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g) / math.sqrt(fan_in))
                    if m.bias is not None:
                        m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.2 - 0.1)
                elif isinstance(m, nn.BatchNorm2d):
                    assert m.running_mean is not None and m.running_var is not None
                    m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                    m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
                    m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
                    m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        y = self.pool(self.body(x))
        if self.flatten_head:
            y = self.fc(torch.flatten(y, 1))
        return y  # type: ignore[no-any-return]


@st.composite
def cnn_specs(draw: st.DrawFn, max_blocks: int = 6, max_size: int = 40) -> CNNSpec:
    """A hypothesis strategy of random CNN specs whose every block keeps the map >= 1x1."""
    n = draw(st.integers(1, 2))
    c = draw(st.integers(1, 6))
    h = draw(st.integers(3, max_size))
    w = draw(st.integers(3, max_size))
    shape = (n, c, h, w)
    blocks: list[Block] = []
    for _ in range(draw(st.integers(1, max_blocks))):
        kind = draw(st.sampled_from(["conv", "conv", "conv", "pool", "residual", "concat",
                                     "reorg", "pad", "se", "upsample", "shuffle", "split"]))
        act = draw(st.sampled_from(ACTIVATIONS))
        if kind == "conv":
            k = draw(st.integers(1, 7))
            s = draw(st.integers(1, 3))
            d = draw(st.integers(1, 3)) if k > 1 else 1
            p = draw(st.integers(0, (d * (k - 1)) // 2 + 1))
            depthwise = draw(st.booleans())
            if depthwise:
                g = c
                out = c * draw(st.integers(1, 2))
            else:
                divisors = [x for x in range(1, c + 1) if c % x == 0]
                g = draw(st.sampled_from(divisors))
                out = g * draw(st.integers(1, max(1, 12 // g)))
            nh, nw = (_window_out(h, k, s, p, d, False), _window_out(w, k, s, p, d, False))
            if nh < 1 or nw < 1:
                continue
            blocks.append(Block("conv", out, k, s, p, d, g, draw(st.booleans()),
                                draw(st.booleans()), act))
            c, h, w = out, nh, nw
        elif kind == "pool":
            pool = draw(st.sampled_from(["max", "avg"]))
            k = draw(st.integers(1, 4))
            s = draw(st.integers(1, 3))
            p = draw(st.integers(0, k // 2))
            d = draw(st.integers(1, 2)) if pool == "max" else 1
            ceil = draw(st.booleans())
            nh, nw = (_window_out(h, k, s, p, d, ceil), _window_out(w, k, s, p, d, ceil))
            if nh < 1 or nw < 1:
                continue
            blocks.append(Block("pool", kernel=k, stride=s, padding=p, dilation=d, pool=pool,
                                ceil_mode=ceil, count_include_pad=draw(st.booleans())))
            h, w = nh, nw
        elif kind == "residual":
            k = draw(st.sampled_from([1, 3, 5]))
            d = draw(st.integers(1, 2))
            g = draw(st.sampled_from([x for x in range(1, c + 1) if c % x == 0]))
            blocks.append(Block("residual", c, k, 1, 0, d, g, True, draw(st.booleans()), act))
        elif kind == "concat":
            k = draw(st.sampled_from([1, 3, 5]))
            out = draw(st.integers(1, 8))
            blocks.append(Block("concat", out, k, 1, 0, 1, 1, True, draw(st.booleans()), act))
            c = 2 * out
        elif kind == "reorg":
            if h % 2 or w % 2 or c * 4 > 48:
                continue
            blocks.append(Block("reorg", stride=2))
            c, h, w = c * 4, h // 2, w // 2
        elif kind == "se":
            gate = draw(st.sampled_from(["sigmoid", "hardsigmoid"]))
            blocks.append(Block("se", pool=draw(st.sampled_from(["avg", "avg", "max"])), act=gate))
        elif kind == "upsample":
            mode = draw(st.sampled_from(["nearest", "bilinear"]))
            if draw(st.booleans()):  # to a size, not necessarily a multiple of the input
                nh, nw = draw(st.integers(h, 2 * h + 1)), draw(st.integers(w, 2 * w + 1))
                blocks.append(Block("upsample", pool=mode, ceil_mode=True, pads=(nh, nw, 0, 0)))
            else:
                s = draw(st.integers(2, 3))
                nh, nw = h * s, w * s
                blocks.append(Block("upsample", pool=mode, stride=s))
            if nh > 2 * max_size or nw > 2 * max_size:
                blocks.pop()
                continue
            h, w = nh, nw
        elif kind == "shuffle":
            groups = [g for g in range(2, c + 1) if c % g == 0]
            if not groups:
                continue
            blocks.append(Block("shuffle", groups=draw(st.sampled_from(groups))))
        elif kind == "split":
            if c < 2:
                continue
            blocks.append(Block("split", kernel=draw(st.sampled_from([1, 3])),
                                bn=draw(st.booleans()), act=act))
        else:
            pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
            blocks.append(Block("pad", pads=pads))  # type: ignore[arg-type]
            h, w = h + pads[2] + pads[3], w + pads[0] + pads[1]
    if not blocks:
        blocks.append(Block("conv", 4, 3, 1, 1))
        c = 4
    head = draw(st.sampled_from([0, 0, 10]))
    head_pool = draw(st.sampled_from([0, 1, 2])) if head else 0
    notes: dict[str, Any] = {}
    if head:
        if head_pool:
            notes["head_in"] = c * head_pool * head_pool
        else:
            notes["head_in"] = c * h * w
    return CNNSpec(shape, tuple(blocks), head, head_pool, draw(st.integers(0, 2**16)), notes)
