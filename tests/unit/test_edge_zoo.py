"""The edge CNNs of the zoo are the published architectures, layer for layer.

Parameter counts equal the reference implementations' (torchvision's model cards for
MobileNetV3, EfficientNet-B0 and ShuffleNetV2; Ultralytics' 3,157,200 for YOLOv8n less the 16
fixed weights of its box-decoding convolution, which is post-processing here), and MACs match
the papers' figures: 56 M (MobileNetV3-Small), 219 M (-Large), 0.39 G (EfficientNet-B0), 146 M
(ShuffleNetV2 1.0x), 8.7 GFLOPs = 4.35 GMACs (YOLOv8n at 640).
"""

from __future__ import annotations

import pytest
import torch

from pytest_edgeenergy import build_model, model_input_shape, partition
from pytest_edgeenergy.graph.build import build_graph

PARAMS = {"mobilenet_v3_small": 2_542_856, "mobilenet_v3_large": 5_483_032,
          "efficientnet_b0": 5_288_548, "shufflenet_v2": 2_278_604, "yolov8n": 3_157_200 - 16}
GMACS = {"mobilenet_v3_small": 0.056, "mobilenet_v3_large": 0.219, "efficientnet_b0": 0.39,
         "shufflenet_v2": 0.146, "yolov8n": 4.35}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_an_edge_zoo_model_has_the_published_parameter_count_and_macs(name: str) -> None:
    model = build_model(name)
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]
    g = build_graph(model, model_input_shape(name))
    assert g.total_macs() / 1e9 == pytest.approx(GMACS[name], rel=0.03)


def test_the_yolov8n_detector_outputs_one_tensor_of_all_cells_at_640() -> None:
    assert model_input_shape("yolov8n") == (1, 3, 640, 640)
    g = build_graph(build_model("yolov8n"), (1, 3, 640, 640))
    assert g.shape(g.output) == (144, 80 * 80 + 40 * 40 + 20 * 20)


@pytest.mark.parametrize("strategy", ["layer", "spatial", "output-channel", "input-channel"])
def test_mobilenet_v3_small_partitions_exactly_over_three_devices(strategy: str) -> None:
    # the cheap default-run check; the full zoo matrix covers every new model at 2, 3, 4, 8
    model = build_model("mobilenet_v3_small")
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = model(x)
    pm = partition(model, strategy, 3, x.shape)
    torch.testing.assert_close(pm(x), ref, rtol=1e-4, atol=1e-5 * max(1.0, float(ref.abs().max())))
    assert pm.trace.device_stats() == pm.plan.device_stats()
