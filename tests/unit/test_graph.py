"""The layer graph: shapes and MACs on meta tensors, BatchNorm folding, activation fusion."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from shared_models import shared_model
from torch import nn

from pytest_edgeenergy import model_input_shape, partition
from pytest_edgeenergy.graph import build_graph
from pytest_edgeenergy.graph.ops import Affine, Conv

# MACs of conv and linear layers at the canonical input; the usual published figures are
# 15.5 G (VGG-16), 1.8 G (ResNet-18), 4.1 G (ResNet-50), 7.8 G (ResNet-101), 0.30 G
# (MobileNetV2), 2.9 G (DenseNet-121); the exact counts below are these layers' sums.
PUBLISHED_GMACS = {"vgg16": 15.5, "resnet18": 1.8, "resnet50": 4.1, "resnet101": 7.8,
                   "mobilenet_v2": 0.30, "densenet121": 2.9}


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMACS))
def test_zoo_macs_match_the_published_figures(name: str) -> None:
    g = build_graph(shared_model(name), model_input_shape(name))
    assert g.total_macs() / 1e9 == pytest.approx(PUBLISHED_GMACS[name], rel=0.03)


def test_vgg16_macs_and_weights_are_exact() -> None:
    g = build_graph(shared_model("vgg16"), model_input_shape("vgg16"))
    assert g.total_macs() == 15_470_264_320
    assert g.total_weight_bytes() == 138_357_544 * 4


def test_planning_resnet101_runs_no_real_convolution(monkeypatch: pytest.MonkeyPatch) -> None:
    real = F.conv2d
    ran: list[str] = []

    def only_meta(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if x.device.type != "meta":
            ran.append(str(x.device))
        return real(x, *args, **kwargs)

    monkeypatch.setattr(F, "conv2d", only_meta)
    pm = partition(shared_model("resnet101"), "spatial", 4, model_input_shape("resnet101"))
    assert ran == []
    assert pm.plan.graph_macs == 7_801_405_440


def test_batchnorm_after_a_conv_is_folded_into_it_exactly() -> None:
    conv, bn = nn.Conv2d(3, 5, 3, padding=1), nn.BatchNorm2d(5)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)  # type: ignore[union-attr]
        bn.running_var.uniform_(0.5, 2)  # type: ignore[union-attr]
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    model = nn.Sequential(conv, bn).eval()
    g = build_graph(model, (1, 3, 6, 6))
    assert [type(layer.op) for layer in g.layers] == [Conv]
    op = g.layers[0].op
    assert isinstance(op, Conv) and op.bias is not None
    x = torch.randn(1, 3, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(F.conv2d(x, op.weight, op.bias, padding=1), model(x),
                                   rtol=1e-5, atol=1e-5)


def test_a_batchnorm_that_does_not_follow_a_conv_becomes_a_channel_affine() -> None:
    g = build_graph(shared_model("densenet121"), model_input_shape("densenet121"))
    assert any(isinstance(layer.op, Affine) for layer in g.layers)


def test_activations_are_fused_into_the_layer_before_them() -> None:
    g = build_graph(shared_model("resnet18"), model_input_shape("resnet18"))
    first = g.layers[0]
    assert first.describe() == "conv 3->64 k7x7 s2 p3 +relu"
    assert not any(layer.op.kind == "act" for layer in g.layers)


class Functional(nn.Module):
    """Every supported op in its functional form."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc = nn.Linear(64, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.a(x))
        z = torch.relu(self.b(y)) + y
        z = torch.add(z, y).relu()
        z = F.leaky_relu(z, 0.2)
        z = F.max_pool2d(z, 2, 2, ceil_mode=True)
        z = torch.cat([z, F.avg_pool2d(z, 3, 1, 1, count_include_pad=False)], dim=1)
        z = F.hardswish(F.silu(z))
        z = F.pixel_unshuffle(F.pad(z, (0, 1, 0, 1)), 2)
        z = F.adaptive_avg_pool2d(z, 1)
        z = F.dropout(z, 0.5, training=False)
        return torch.sigmoid(self.fc(torch.flatten(z, 1)))


@pytest.mark.parametrize("strategy", ["layer", "spatial", "output-channel", "input-channel"])
def test_functional_forms_are_supported_and_partition_exactly(strategy: str) -> None:
    model = Functional().eval()
    x = torch.randn(2, 3, 13, 13)
    pm = partition(model, strategy, 3, x.shape)
    with torch.no_grad():
        torch.testing.assert_close(pm(x), model(x), rtol=1e-4, atol=1e-5)
    kinds = {layer.op.kind for layer in pm.graph.layers}
    assert {"conv", "add", "pool", "cat", "pad", "reorg", "global_pool", "flatten",
            "linear"} <= kinds


def test_tensor_and_layer_sizes_are_reported_in_bytes() -> None:
    g = build_graph(shared_model("vgg16"), model_input_shape("vgg16"))
    assert g.tensor_bytes(g.input_name) == 3 * 224 * 224 * 4
    assert g.tensor_bytes(g.layers[0].name) == 64 * 224 * 224 * 4
    assert "conv 3->64 k3x3 s1 p1 +relu" in g.summary()
