"""Shared cases of the energy and schedule tests: a device with round figures, one conv and
a small CNN, and their plans (plans are pure data: cached)."""

from __future__ import annotations

import functools

import torch
from torch import nn

from pytest_edgeenergy.cluster import Cluster
from pytest_edgeenergy.graph.build import build_graph
from pytest_edgeenergy.plan import Plan
from pytest_edgeenergy.profiles import DeviceProfile
from pytest_edgeenergy.strategies import get_strategy

STRATEGIES = ["layer", "spatial", "output-channel", "input-channel"]
CONV_INPUT = (1, 2, 4, 4)


def make_profile(idle_w: float = 1.0, active_w: float = 3.0, macs_per_s: float = 1e6,
                 mem_bytes_per_s: float = 1e6, net_bytes_per_s: float = 1e5,
                 net_latency_s: float = 1e-3, tx_j_per_byte: float = 1e-6,
                 rx_j_per_byte: float = 2e-6) -> DeviceProfile:
    """A device with round figures (the defaults), any of which a test may change."""
    return DeviceProfile(
        name="pencil", description="a device with round figures", network="made up",
        idle_w=idle_w, active_w=active_w, macs_per_s=macs_per_s,
        mem_bytes_per_s=mem_bytes_per_s, memory_bytes=1_000_000,
        net_bytes_per_s=net_bytes_per_s, net_latency_s=net_latency_s,
        tx_j_per_byte=tx_j_per_byte, rx_j_per_byte=rx_j_per_byte)


P = make_profile()
MACS_S, MEM_S = P.macs_per_s, P.mem_bytes_per_s


def link_s(nbytes: int, profile: DeviceProfile = P) -> float:
    """A transfer's duration between two devices of ``profile``, written out by hand."""
    return profile.net_latency_s + nbytes / profile.net_bytes_per_s


def conv_model() -> nn.Module:
    """One convolution with bias: 4 x 4 x 4 outputs, each 2 x 3 x 3 = 18 MACs."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1)).eval()


@functools.cache
def conv_plan(strategy: str, n: int) -> Plan:
    """The conv split over ``n`` devices (plans are pure data: cached for hypothesis)."""
    graph = build_graph(conv_model(), CONV_INPUT)
    return get_strategy(strategy).plan(graph, Cluster((P,) * n))


def small_cnn() -> nn.Module:
    """Convs, a pool, a residual add and a linear head: every kind of step a plan has."""

    class Small(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.c2 = nn.Conv2d(8, 8, 3, padding=1)
            self.c3 = nn.Conv2d(8, 4, 3, stride=2, padding=1)
            self.fc = nn.Linear(4 * 2 * 2, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.pool(torch.relu(self.c1(x)))
            y = torch.relu(self.c2(y)) + y
            out: torch.Tensor = self.fc(torch.flatten(self.c3(y), 1))
            return out

    torch.manual_seed(0)
    return Small().eval()


@functools.cache
def small_plan(strategy: str, n: int) -> Plan:
    """The small CNN on an 8x8 image split over ``n`` devices."""
    graph = build_graph(small_cnn(), (1, 3, 8, 8))
    return get_strategy(strategy).plan(graph, Cluster((P,) * n))
