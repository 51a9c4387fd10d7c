"""Every op of modern edge CNNs, in each way model code writes it, partitions exactly.

Each case is a tiny network: a convolution, the op under test, and (where the op keeps an
(N, C, H, W) map) a 3x3 convolution that reads it, so spatial halos and channel slices of the
op's output are exercised. Every strategy, 2 and 3 devices: equal output, trace == plan.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from matrices import DEVICE_COUNTS
from torch import Tensor, nn

from pytest_edgeenergy import partition
from pytest_edgeenergy.graph.build import build_graph
from pytest_edgeenergy.plan import Task

STRATEGIES = ["layer", "spatial", "output-channel", "input-channel"]
Fn = Callable[["Net", Tensor], Tensor]


class Net(nn.Module):
    """conv(3 -> 8) + BN, ``fn``, then conv(c -> 6) when the result is still a feature map."""

    def __init__(self, fn: Fn, c_out: int = 8, post: bool = True) -> None:
        super().__init__()
        self.pre = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8))
        self.side = nn.Conv2d(8, 8, 1)
        self.gamma = nn.Parameter(torch.linspace(0.5, 1.5, 8))
        self.fn = fn
        self.m = nn.ModuleDict({
            "hardswish": nn.Hardswish(), "hardsigmoid": nn.Hardsigmoid(),
            "gelu_tanh": nn.GELU(approximate="tanh"), "mish": nn.Mish(), "tanh": nn.Tanh(),
            "shuffle": nn.ChannelShuffle(2), "up_size": nn.Upsample(size=(21, 13)),
            "up_corners": nn.UpsamplingBilinear2d(scale_factor=2),
            "avgpool": nn.AvgPool2d(3, 2, 1, count_include_pad=False),
            "zeropad": nn.ZeroPad2d((1, 2, 0, 3))})
        self.post: nn.Module = nn.Conv2d(c_out, 6, 3, padding=1) if post else nn.Identity()
        g = torch.Generator().manual_seed(3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.4)
            bn = self.pre[1]
            assert isinstance(bn, nn.BatchNorm2d)
            assert bn.running_var is not None and bn.running_mean is not None
            bn.running_var.uniform_(0.5, 1.5, generator=g)
            bn.running_mean.uniform_(-0.2, 0.2, generator=g)
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.post(self.fn(self, self.pre(x)))
        return out


def _shuffle(x: Tensor, groups: int) -> Tensor:
    n, c, h, w = x.size()
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, -1, h, w)


def _shuffle_permute(x: Tensor, groups: int) -> Tensor:
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)


def _same_max_pool(x: Tensor) -> Tensor:
    ih, iw = x.size()[-2:]
    ph = max((-(-ih // 2) - 1) * 2 + 3 - ih, 0)
    pw = max((-(-iw // 2) - 1) * 2 + 3 - iw, 0)
    x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2], value=-float("inf"))
    return F.max_pool2d(x, 3, 2)


def _split(x: Tensor) -> Tensor:
    a, b, c = torch.split(x, [2, 4, 2], dim=1)
    return torch.cat([c, F.relu(a), b * 2.0], 1)


def _se_linear(m: Net, x: Tensor) -> Tensor:
    b, c, _, _ = x.size()
    y = F.adaptive_avg_pool2d(x, 1).view(b, c)
    y = torch.sigmoid(F.linear(y, m.side.weight.view(8, 8), m.side.bias)).view(b, c, 1, 1)
    return x * y.expand_as(x)


def _heads(x: Tensor) -> Tensor:
    a = x[:, :4].flatten(2)
    b = F.max_pool2d(x[:, 4:], 2).view(x.shape[0], 4, -1)
    return torch.cat([a, b], 2)


CASES: dict[str, tuple[Fn, int, bool]] = {
    # activations: modules, functions, methods
    "hardswish module": (lambda m, x: m.m["hardswish"](x), 8, True),
    "hardswish function": (lambda m, x: F.hardswish(x), 8, True),
    "hardswish written out": (lambda m, x: x * F.relu6(x + 3.0) / 6.0, 8, True),
    "hardsigmoid module": (lambda m, x: m.m["hardsigmoid"](x), 8, True),
    "hardsigmoid function": (lambda m, x: F.hardsigmoid(x), 8, True),
    "gelu": (lambda m, x: F.gelu(x), 8, True),
    "gelu tanh": (lambda m, x: m.m["gelu_tanh"](x), 8, True),
    "mish": (lambda m, x: F.mish(x), 8, True),
    "mish module": (lambda m, x: m.m["mish"](x), 8, True),
    "silu function": (lambda m, x: F.silu(x), 8, True),
    "sigmoid method": (lambda m, x: x.sigmoid(), 8, True),
    "sigmoid function": (lambda m, x: torch.sigmoid(x), 8, True),
    "tanh method": (lambda m, x: x.tanh(), 8, True),
    "tanh module": (lambda m, x: m.m["tanh"](x), 8, True),
    "clamp method": (lambda m, x: x.clamp(-0.5, 0.5), 8, True),
    "hardtanh": (lambda m, x: F.hardtanh(x, -1.0, 2.0), 8, True),
    "number minus tensor": (lambda m, x: 1.0 - x, 8, True),
    # gates and broadcasting
    "se with mean keepdim": (lambda m, x: x * torch.sigmoid(m.side(x.mean((2, 3), keepdim=True))),
                             8, True),
    "se with adaptive pool, gate first": (
        lambda m, x: F.hardsigmoid(m.side(F.adaptive_avg_pool2d(x, 1))) * x, 8, True),
    "se with amax": (lambda m, x: x * m.side(x.amax((2, 3), keepdim=True)).sigmoid(), 8, True),
    "se with linear and expand_as": (_se_linear, 8, True),
    "broadcast add": (lambda m, x: x + m.side(F.adaptive_max_pool2d(x, 1)), 8, True),
    "broadcast sub and div": (lambda m, x: (x - x.mean((2, 3), keepdim=True)) / (
        F.relu(m.side(x)) + 1.0), 8, True),
    "layer scale": (lambda m, x: x * m.gamma.view(1, -1, 1, 1) + m.gamma[:, None, None], 8, True),
    # shuffles and splits
    "channel shuffle view transpose view": (lambda m, x: _shuffle(x, 2), 8, True),
    "channel shuffle reshape permute": (lambda m, x: _shuffle_permute(x, 4), 8, True),
    "channel shuffle module": (lambda m, x: m.m["shuffle"](x), 8, True),
    "chunk": (lambda m, x: torch.cat([x.chunk(2, 1)[1], F.relu(x.chunk(2, 1)[0])], 1), 8, True),
    "split sections": (lambda m, x: _split(x), 8, True),
    "narrow": (lambda m, x: x.narrow(1, 2, 5), 5, True),
    "channel slice": (lambda m, x: torch.cat([x, m.side(x)], 1)[:, :11], 11, True),
    # upsampling
    "nearest x2": (lambda m, x: F.interpolate(x, scale_factor=2), 8, True),
    "nearest to a size": (lambda m, x: m.m["up_size"](x), 8, True),
    "bilinear x2": (lambda m, x: F.interpolate(x, scale_factor=2, mode="bilinear"), 8, True),
    "bilinear align corners": (lambda m, x: m.m["up_corners"](x), 8, True),
    "bilinear x1.5": (lambda m, x: F.interpolate(x, scale_factor=1.5, mode="bilinear"), 8, True),
    "bicubic to a size": (lambda m, x: F.interpolate(x, size=(20, 17), mode="bicubic",
                                                     align_corners=False), 8, True),
    "nearest-exact x3": (lambda m, x: F.interpolate(x, scale_factor=3, mode="nearest-exact"),
                         8, True),
    "area down to a size": (lambda m, x: F.interpolate(x, size=(5, 4), mode="area"), 8, True),
    # concatenation, pools, padding
    "concat of four": (lambda m, x: torch.cat([x, F.max_pool2d(x, 3, 1, 1), m.side(x), x * 0.5],
                                              1), 32, True),
    "max pool with padding and ceil": (lambda m, x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
                                       8, True),
    "avg pool without counting padding": (lambda m, x: m.m["avgpool"](x), 8, True),
    "max pool with run-time same padding": (lambda m, x: _same_max_pool(x), 8, True),
    "zero pad 2d": (lambda m, x: m.m["zeropad"](x), 8, True),
    "conv same with an even kernel": (lambda m, x: F.conv2d(x, m.side.weight.repeat(1, 1, 2, 2),
                                                            None, 1, "same"), 8, True),
    # heads
    "mean without keepdim and linear": (
        lambda m, x: F.linear(x.mean([2, 3]), m.side.weight.view(8, 8)), 8, False),
    "flatten of rows and columns, cat along cells": (lambda m, x: _heads(x), 8, False),
}


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel:UserWarning")
@pytest.mark.parametrize("n", DEVICE_COUNTS)
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_an_edge_cnn_op_partitions_exactly_with_trace_equal_to_plan(
        case: str, strategy: str, n: int) -> None:
    fn, c_out, post = CASES[case]
    model = Net(fn, c_out, post)
    x = torch.randn(1, 3, 15, 11, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = model(x)
    pm = partition(model, strategy, n, x.shape)
    out = pm(x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5 * max(1.0, float(ref.abs().max())))
    assert pm.trace.device_stats() == pm.plan.device_stats()


def test_an_upsample_band_reads_only_the_rows_its_weights_touch() -> None:
    model = Net(lambda m, x: F.interpolate(x, scale_factor=2, mode="bilinear"), 8, False)
    g = build_graph(model, (1, 3, 8, 8))
    up = next(layer for layer in g.layers if layer.op.kind == "upsample")
    from pytest_edgeenergy.graph.box import Box
    # output rows 4..8 of a 2x bilinear resize sample source rows 1.75 .. 3.25: rows 1..4
    (box,) = up.op.input_boxes(Box(((0, 8), (4, 8), (0, 16))), None)
    assert box is not None and box.ranges[1] == (1, 5)
    # nearest x2: output rows 4..8 copy source rows 2..3
    nearest = build_graph(Net(lambda m, x: F.interpolate(x, scale_factor=2), 8, False),
                          (1, 3, 8, 8))
    up = next(layer for layer in nearest.layers if layer.op.kind == "upsample")
    (box,) = up.op.input_boxes(Box(((0, 8), (4, 8), (0, 16))), None)
    assert box is not None and box.ranges[1] == (2, 4)


def test_under_spatial_a_squeeze_excitation_pool_is_a_cross_device_partial_sum() -> None:
    model = Net(lambda m, x: x * torch.sigmoid(m.side(x.mean((2, 3), keepdim=True))), 8, True)
    pm = partition(model, "spatial", 3, (1, 3, 15, 11))
    pool = next(layer for layer in pm.graph.layers if layer.op.kind == "global_pool")
    tasks = [s for s in pm.plan.steps if isinstance(s, Task) and s.layer == pool.name]
    assert sorted((t.kind, t.device) for t in tasks) == [
        ("partial", 0), ("partial", 1), ("partial", 2), ("reduce", 0)]
    # no row of the pooled map travels for the pool (later halos of the multiply may): each
    # device pools its own band, and only the 8 partial sums of devices 1 and 2 go to device 0
    pooled_input = pool.inputs[0]
    last_partial = max(t.step for t in tasks if t.kind == "partial")
    assert not [t for t in pm.plan.transfers if t.step < last_partial
                and pm.plan.pieces[t.src_piece].tensor == pooled_input]
    reduce_inputs = [t for t in pm.plan.transfers if "~p" in pm.plan.pieces[t.src_piece].tensor]
    assert sorted((t.src, t.dst, t.bytes) for t in reduce_inputs) == [(1, 0, 32), (2, 0, 32)]
    x = torch.randn(1, 3, 15, 11)
    with torch.no_grad():
        torch.testing.assert_close(pm(x), model(x), rtol=1e-4, atol=1e-5)
