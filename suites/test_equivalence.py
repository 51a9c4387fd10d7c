"""Equivalence on shapes hypothesis draws: every strategy, every cluster, many small CNNs.

The zoo's models have one input shape each; here hypothesis draws the shapes (batch, channels,
height, width, kernels, strides, padding, pools, grouped convolutions) and every strategy must
still give the unpartitioned model's output, with a trace equal to its plan's counts.
Examples are derandomised, so CI runs the same ones every time.
"""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pytest_edgeenergy.cluster import Cluster
from pytest_edgeenergy.partitioned import partition
from pytest_edgeenergy.plugin.fixtures import EQUIVALENCE_TOLERANCE, make_input
from pytest_edgeenergy.strategies import Strategy
from pytest_edgeenergy.zoo import build_model

Net = tuple[nn.Module, tuple[int, int, int, int]]


def _out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


@st.composite
def convnets(draw: st.DrawFn) -> Net:
    """A small CNN (conv/BN/ReLU blocks, depthwise convs, pools, a linear head) and its input."""
    batch = draw(st.integers(1, 2))
    channels = draw(st.integers(1, 4))
    height, width = draw(st.integers(4, 20)), draw(st.integers(4, 20))
    shape = (batch, channels, height, width)
    layers: list[nn.Module] = []
    for _ in range(draw(st.integers(1, 3))):
        kernel = draw(st.sampled_from([1, 3, 5]))
        stride = draw(st.integers(1, 2))
        padding = draw(st.integers(0, kernel // 2))
        if min(_out_size(height, kernel, stride, padding),
               _out_size(width, kernel, stride, padding)) < 1:
            continue
        depthwise = channels > 1 and draw(st.booleans())
        out = channels if depthwise else draw(st.integers(1, 12))
        layers += [nn.Conv2d(channels, out, kernel, stride, padding,
                             groups=channels if depthwise else 1, bias=draw(st.booleans())),
                   nn.BatchNorm2d(out), nn.ReLU()]
        channels = out
        height = _out_size(height, kernel, stride, padding)
        width = _out_size(width, kernel, stride, padding)
        if min(height, width) >= 2 and draw(st.booleans()):
            layers.append(draw(st.sampled_from([nn.MaxPool2d(2), nn.AvgPool2d(2)])))
            height, width = height // 2, width // 2
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, draw(st.integers(1, 8)))]
    seed = draw(st.integers(0, 2**16))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(*layers)
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                assert module.running_mean is not None and module.running_var is not None
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval(), shape


def _check(model: nn.Module, shape: tuple[int, ...], strategy: Strategy,
           cluster: Cluster) -> None:
    x = make_input(shape, seed=1)
    with torch.no_grad():
        reference = model(x)
    pm = partition(model, strategy, cluster, shape)
    output = pm(x)
    atol = EQUIVALENCE_TOLERANCE * float(reference.abs().max())
    torch.testing.assert_close(output, reference, rtol=0.0, atol=atol)
    assert pm.trace.device_stats() == pm.plan.device_stats()


@settings(max_examples=12, deadline=None, derandomize=True)
@given(net=convnets())
def test_every_strategy_matches_drawn_convnets(net: Net, edge_strategy: Strategy,
                                               edge_cluster: Cluster) -> None:
    """A drawn CNN partitioned by each strategy gives the unpartitioned output."""
    model, shape = net
    _check(model, shape, edge_strategy, edge_cluster)


@settings(max_examples=8, deadline=None, derandomize=True)
@given(height=st.integers(8, 48), width=st.integers(8, 48), batch=st.integers(1, 2))
def test_every_strategy_matches_tinycnn_at_drawn_input_sizes(
        height: int, width: int, batch: int, edge_strategy: Strategy,
        edge_cluster: Cluster) -> None:
    """TinyCNN ends in a global pool, so any image size works: each must partition exactly."""
    _check(build_model("tinycnn"), (batch, 3, height, width), edge_strategy, edge_cluster)
