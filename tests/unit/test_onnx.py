"""ONNX models: an exported zoo model partitions exactly like the original, with the same plan
counts; an op the importer does not know is refused naming the node, its op type and the
strategy."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from library_models import FAMILIES, build
from torch import nn

from pytest_edgeenergy import PartitionError, build_model, partition

onnx = pytest.importorskip("onnx")

STRATEGIES = ["layer", "spatial", "output-channel", "input-channel"]
#: three zoo models at input sizes small enough for the default run
ROUND_TRIP = {"tinycnn": (1, 3, 32, 32), "mobilenet_v3_small": (1, 3, 96, 96),
              "shufflenet_v2": (1, 3, 64, 64)}


def export(model: nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    """Export with torch's TorchScript-based exporter: torch 2.13's default (dynamo) exporter
    needs the onnxscript package, which this project does not depend on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(shape),), str(path), dynamo=False)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("onnx")
    return {name: export(build_model(name), shape, folder / f"{name}.onnx")
            for name, shape in ROUND_TRIP.items()}


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("name", sorted(ROUND_TRIP))
def test_an_exported_zoo_model_gives_the_same_plan_counts_and_output_as_the_original(
        exported: dict[str, Path], name: str, strategy: str) -> None:
    shape = ROUND_TRIP[name]
    model = build_model(name)
    original = partition(model, strategy, 3, shape)
    from_file = partition(exported[name], strategy, 3, shape)
    assert from_file.plan.device_stats() == original.plan.device_stats()
    x = torch.randn(shape, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = model(x)
    out = from_file(x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5 * max(1.0, float(ref.abs().max())))
    assert from_file.trace.device_stats() == from_file.plan.device_stats()


def _softmax_model(path: Path) -> Path:
    helper = onnx.helper
    tp = onnx.TensorProto
    weight = helper.make_tensor("w", tp.FLOAT, [4, 3, 3, 3], [0.1] * 108)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1]),
         helper.make_node("Softmax", ["y"], ["z"], name="probabilities", axis=1)],
        "g", [helper.make_tensor_value_info("x", tp.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("z", tp.FLOAT, [1, 4, 8, 8])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_an_unsupported_onnx_op_is_refused_naming_the_node_its_op_type_and_the_strategy(
        tmp_path: Path) -> None:
    path = _softmax_model(tmp_path / "soft.onnx")
    with pytest.raises(PartitionError, match=r"ONNX node 'probabilities' of op type Softmax in "
                                             r".*soft\.onnx is not supported.*"
                                             r"\(strategy 'spatial'\)$"):
        partition(path, "spatial", 2, (1, 3, 8, 8))


def test_a_missing_onnx_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PartitionError, match=r"ONNX model .*nope\.onnx does not exist "
                                             r"\(strategy 'layer'\)"):
        partition(tmp_path / "nope.onnx", "layer", 2, (1, 3, 8, 8))


def test_a_path_that_is_not_onnx_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PartitionError, match=r"neither an nn.Module nor the path of an \.onnx"):
        partition(str(tmp_path / "model.pt"), "layer", 2, (1, 3, 8, 8))


#: families whose export exercises the importer's less common paths (run-time "same" padding:
#: shape slices reversed with a negative step; -inf pads; Expand; Softplus/Tanh Mish; bilinear
#: Resize to a size); the others run with the heavy tests
CHEAP_FAMILIES = {"tf_efficientnet_same", "repvgg", "senet_linear", "fpn"}


def _families() -> list[object]:
    return [name if name in CHEAP_FAMILIES else pytest.param(name, marks=pytest.mark.heavy)
            for name in sorted(FAMILIES)]


@pytest.mark.parametrize("family", _families())
def test_a_library_style_model_exported_to_onnx_partitions_exactly(
        family: str, tmp_path: Path) -> None:
    model = build(family)
    shape = (1, 3, 64, 64)
    path = export(model, shape, tmp_path / f"{family}.onnx")
    x = torch.randn(shape, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        ref = model(x)
    for strategy in STRATEGIES:
        pm = partition(path, strategy, 3, shape)
        out = pm(x)
        torch.testing.assert_close(out, ref, rtol=1e-4,
                                   atol=1e-5 * max(1.0, float(ref.abs().max())))
        assert pm.trace.device_stats() == pm.plan.device_stats()
