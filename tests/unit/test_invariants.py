"""Invariants of the four strategies, and transfer bytes checked against a hand calculation."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from shared_models import shared_model
from torch import nn

from pytest_edgeenergy import model_input_shape, partition
from pytest_edgeenergy.graph import build_graph
from pytest_edgeenergy.plan import Transfer

F32 = 4


class TwoConvs(nn.Module):
    """conv1 3->8 k3 p1 + relu, conv2 8->4 k3 p1, on an 8x8 image."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu(self.conv1(x)))  # type: ignore[no-any-return]


SHAPE = (1, 3, 8, 8)


def transfers(strategy: str, fuse: int | None = None) -> list[tuple[int, int, int]]:
    params: dict[str, Any] = {} if fuse is None else {"fuse": fuse}
    pm = partition(TwoConvs().eval(), strategy, 2, SHAPE, **params)
    out = pm(torch.randn(SHAPE))
    assert out.shape == (1, 4, 8, 8)
    return [(t.src, t.dst, t.bytes) for t in pm.plan.steps if isinstance(t, Transfer)]


def test_layer_wise_sends_the_cut_activation_and_returns_the_output() -> None:
    # MACs: conv1 8*8*8*27 = 13,824; conv2 4*8*8*72 = 18,432. The only cut within the 5 %
    # window of the half (16,128) would need 15,516..16,740 MACs: none, so the closest cut,
    # after conv1, is taken. conv1's output (8x8x8) goes to device 1, conv2's (4x8x8) back.
    assert transfers("layer") == [(0, 1, 8 * 8 * 8 * F32), (1, 0, 4 * 8 * 8 * F32)]


def test_output_channel_broadcasts_the_input_all_gathers_and_gathers_the_output() -> None:
    # conv1's 8 filters split 4/4: device 1 needs the whole input (3x8x8). conv2 needs all of
    # conv1's output on both devices: each sends its 4 channels to the other. conv2's 4
    # filters split 2/2: device 1 sends its 2 output channels to device 0.
    assert sorted(transfers("output-channel")) == sorted([
        (0, 1, 3 * 8 * 8 * F32),
        (1, 0, 4 * 8 * 8 * F32), (0, 1, 4 * 8 * 8 * F32),
        (1, 0, 2 * 8 * 8 * F32),
    ])


def test_input_channel_scatters_channels_reduce_scatters_and_reduces_on_device_0() -> None:
    # conv1's 3 input channels split 2/1: device 1 receives channel 2 (1x8x8). Both make a
    # full 8x8x8 partial sum; reduce-scatter by output channel 4/4: each sends the other half
    # (4x8x8). conv2's input channels are then already split 4/4: no transfer. conv2 is the
    # last layer: its partial sums (4x8x8) are reduced on device 0.
    assert sorted(transfers("input-channel")) == sorted([
        (0, 1, 1 * 8 * 8 * F32),
        (1, 0, 4 * 8 * 8 * F32), (0, 1, 4 * 8 * 8 * F32),
        (1, 0, 4 * 8 * 8 * F32),
    ])


def test_spatial_fused_scatters_input_bands_with_halos_and_gathers_output_bands() -> None:
    # One fused stack of both convs. Output rows split 0:4 / 4:8. Device 1 needs conv1 rows
    # 3:8 (halo of 1 for conv2), hence input rows 2:8 (another halo row): 3 channels x 6
    # rows x 8. It sends its output band 4:8 (4 channels x 4 rows x 8) back.
    assert transfers("spatial", fuse=2) == [(0, 1, 3 * 6 * 8 * F32), (1, 0, 4 * 4 * 8 * F32)]


def test_spatial_layer_by_layer_exchanges_one_halo_row_each_way() -> None:
    # fuse=1: input rows 3:8 to device 1 (3x5x8); before conv2 each device sends its row next
    # to the border (8 channels x 1 row x 8) to the other; output band 4:8 back.
    assert sorted(transfers("spatial", fuse=1)) == sorted([
        (0, 1, 3 * 5 * 8 * F32), (0, 1, 8 * 1 * 8 * F32), (1, 0, 8 * 1 * 8 * F32),
        (1, 0, 4 * 4 * 8 * F32),
    ])


def test_spatial_reports_its_halo_recompute_exactly() -> None:
    pm = partition(TwoConvs().eval(), "spatial", 2, SHAPE, fuse=2)
    # conv1 rows 0:5 and 3:8: rows 3 and 4 twice, 2 rows x 8 columns x 8 channels x 27 MACs.
    assert pm.plan.redundant_macs == 2 * 8 * 8 * 27
    assert pm.plan.total_macs == pm.plan.graph_macs + pm.plan.redundant_macs


@pytest.fixture(scope="module")
def resnet50_graph() -> object:
    return build_graph(shared_model("resnet50"), model_input_shape("resnet50"))


@pytest.mark.parametrize("strategy", ["layer", "output-channel", "input-channel"])
@pytest.mark.parametrize("n", [2, 3, 8])
def test_total_macs_equal_the_unpartitioned_macs_exactly(strategy: str, n: int) -> None:
    model = shared_model("resnet50")
    pm = partition(model, strategy, n, model_input_shape("resnet50"))
    assert pm.plan.total_macs == pm.plan.graph_macs == 4_089_184_256
    assert pm.plan.redundant_macs == 0


@pytest.mark.parametrize("fuse", [1, 2, 4])
def test_spatial_macs_exceed_the_model_only_by_the_reported_recompute(fuse: int) -> None:
    model = shared_model("vgg16")
    pm = partition(model, "spatial", 4, model_input_shape("vgg16"), fuse=fuse)
    plan = pm.plan
    assert plan.skipped_macs == 0
    assert plan.total_macs == plan.graph_macs + plan.redundant_macs
    if fuse == 1:
        assert plan.redundant_macs == 0
    else:
        assert plan.redundant_macs > 0


@pytest.mark.parametrize("strategy", ["output-channel", "input-channel"])
@pytest.mark.parametrize("name", ["vgg16", "resnet50"])
def test_channel_strategies_give_each_device_about_a_quarter_of_the_weights(
        name: str, strategy: str) -> None:
    pm = partition(shared_model(name), strategy, 4, model_input_shape(name))
    total = pm.plan.graph_weight_bytes
    for stats in pm.plan.device_stats():
        assert 0.22 * total <= stats.weight_bytes <= 0.28 * total


def test_spatial_replicates_the_weights_of_the_layers_it_splits() -> None:
    pm = partition(shared_model("resnet18"), "spatial", 4, model_input_shape("resnet18"))
    fc_bytes = (1000 * 512 + 1000) * F32
    conv_bytes = pm.plan.graph_weight_bytes - fc_bytes
    stats = pm.plan.device_stats()
    assert stats[0].weight_bytes == pm.plan.graph_weight_bytes  # the Linear runs on device 0
    assert all(s.weight_bytes == conv_bytes for s in stats[1:])


class HeavyFirst(nn.Module):
    """A 7x7 conv with half the MACs, then six light 1x1 convs."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Conv2d(3, 32, 7, padding=3)
        self.rest = nn.Sequential(*[nn.Conv2d(32, 32, 1) for _ in range(6)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rest(self.first(x))  # type: ignore[no-any-return]


def test_layer_wise_shares_what_a_heavy_first_layer_leaves_among_the_other_devices() -> None:
    model = HeavyFirst().eval()
    pm = partition(model, "layer", 4, (1, 3, 16, 16))
    assert pm.plan.idle_devices() == []
    macs = [s.macs for s in pm.plan.device_stats()]
    assert macs[0] == 32 * 16 * 16 * 3 * 49  # the 7x7 conv alone
    assert sorted(macs[1:]) == [2 * 32 * 16 * 16 * 32] * 3  # two 1x1 convs each


def test_layer_wise_gives_each_weight_to_exactly_one_device() -> None:
    pm = partition(shared_model("vgg16"), "layer", 4, model_input_shape("vgg16"))
    assert sum(s.weight_bytes for s in pm.plan.device_stats()) == pm.plan.graph_weight_bytes


def test_devices_beyond_what_a_dimension_splits_into_stay_idle_and_the_plan_says_so() -> None:
    model = TwoConvs().eval()
    pm = partition(model, "spatial", 16, SHAPE, fuse=1)
    # 8 rows for 16 devices: devices 8..15 get no row.
    assert pm.plan.idle_devices() == list(range(8, 16))
    assert "(idle)" in pm.plan.summary()
    x = torch.randn(SHAPE)
    with torch.no_grad():
        torch.testing.assert_close(pm(x), model(x), rtol=1e-4, atol=1e-5)


def test_a_faster_device_gets_a_larger_share() -> None:
    from pytest_edgeenergy import Cluster

    cluster = Cluster.parse("jetson-nano-10w,rpi4")
    pm = partition(shared_model("vgg16"), "output-channel", cluster, model_input_shape("vgg16"))
    fast, slow = pm.plan.device_stats()
    ratio = cluster.speeds[0] / cluster.speeds[1]
    assert fast.macs / slow.macs == pytest.approx(ratio, rel=0.05)
