"""Tests of the model zoo: published sizes, shapes, determinism, traceability, sane outputs.

Each built-in model is built once (a module-scoped, parametrised fixture, so pytest groups the
tests by model and holds one model in memory at a time) and run forward once.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.fx
import torch.nn.functional as F  # noqa: N812 - the conventional alias
from torch import nn

from pytest_edgeenergy.errors import PartitionError
from pytest_edgeenergy.zoo import (
    build_model,
    init_weights,
    list_models,
    model_input_shape,
    register_model,
)
from pytest_edgeenergy.zoo import registry as zoo_registry

BUILTIN_MODELS = [
    "densenet121",
    "mobilenet_v2",
    "resnet101",
    "resnet18",
    "resnet50",
    "tinycnn",
    "vgg16",
    "vgg19",
    "yolov2",
    "yolov2_tiny",
]
#: the edge CNNs of issue 12; their published figures are checked in tests/unit/test_edge_zoo.py
EDGE_MODELS = ["efficientnet_b0", "mobilenet_v3_large", "mobilenet_v3_small", "shufflenet_v2",
               "yolov8n"]


def _conv_bn(in_channels: int, out_channels: int, size: int) -> int:
    """Parameters of a darknet ``[convolutional]`` with ``batch_normalize=1``.

    No convolution bias (darknet drops it under batch-norm); batch-norm's gamma and beta are the
    two trainable per-channel terms (its running mean and variance are buffers).
    """
    return size * size * in_channels * out_channels + 2 * out_channels


def _conv_linear(in_channels: int, out_channels: int, size: int) -> int:
    """Parameters of a darknet ``[convolutional]`` without batch-norm: weights and a bias."""
    return size * size * in_channels * out_channels + out_channels


# The layer lists below are transcribed by hand from darknet's cfg files (pjreddie/darknet,
# cfg/yolov2.cfg with COCO's 425 final filters, and cfg/yolov2-tiny.cfg), one term per
# [convolutional] section in file order; [maxpool], [route] and [reorg] have no parameters.
YOLOV2_PARAMETERS = sum(
    [
        _conv_bn(3, 32, 3),  # 0
        _conv_bn(32, 64, 3),  # 2
        _conv_bn(64, 128, 3),  # 4
        _conv_bn(128, 64, 1),  # 5
        _conv_bn(64, 128, 3),  # 6
        _conv_bn(128, 256, 3),  # 8
        _conv_bn(256, 128, 1),  # 9
        _conv_bn(128, 256, 3),  # 10
        _conv_bn(256, 512, 3),  # 12
        _conv_bn(512, 256, 1),  # 13
        _conv_bn(256, 512, 3),  # 14
        _conv_bn(512, 256, 1),  # 15
        _conv_bn(256, 512, 3),  # 16
        _conv_bn(512, 1024, 3),  # 18
        _conv_bn(1024, 512, 1),  # 19
        _conv_bn(512, 1024, 3),  # 20
        _conv_bn(1024, 512, 1),  # 21
        _conv_bn(512, 1024, 3),  # 22
        _conv_bn(1024, 1024, 3),  # 23
        _conv_bn(1024, 1024, 3),  # 24
        _conv_bn(512, 64, 1),  # 26, after [route] layers=-9 (layer 16, 512 channels)
        _conv_bn(64 * 4 + 1024, 1024, 3),  # 29, after [reorg] and [route] layers=-1,-4
        _conv_linear(1024, 5 * (5 + 80), 1),  # 30, linear, 425 filters
    ]
)
YOLOV2_TINY_PARAMETERS = sum(
    [
        _conv_bn(3, 16, 3),
        _conv_bn(16, 32, 3),
        _conv_bn(32, 64, 3),
        _conv_bn(64, 128, 3),
        _conv_bn(128, 256, 3),
        _conv_bn(256, 512, 3),
        _conv_bn(512, 1024, 3),
        _conv_bn(1024, 512, 3),
        _conv_linear(512, 5 * (5 + 80), 1),
    ]
)

# tinycnn is this project's own design: its count is summed by hand from its docstring.
TINYCNN_PARAMETERS = sum(
    [
        3 * 16 * 3 * 3 + 2 * 16,  # stride-2 stem, batch-norm
        16 * 3 * 3 + 2 * 16,  # depthwise, batch-norm
        16 * 16 + 2 * 16,  # pointwise, batch-norm
        16 * 16 + 16,  # 1x1 branch with bias
        16 * 16 * 3 * 3 + 16,  # dilated 3x3 branch with bias
        32 * 64 * 3 * 3 + 2 * 64,  # head, batch-norm
        64 * 10 + 10,  # Linear
    ]
)

#: Published parameter counts (the papers' nets as in the reference torchvision/darknet code).
PUBLISHED_PARAMETERS = {
    "densenet121": 7_978_856,
    "mobilenet_v2": 3_504_872,
    "resnet101": 44_549_160,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "tinycnn": TINYCNN_PARAMETERS,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "yolov2": YOLOV2_PARAMETERS,
    "yolov2_tiny": YOLOV2_TINY_PARAMETERS,
}

IMAGENET_INPUT = (1, 3, 224, 224)
DARKNET_INPUT = (1, 3, 416, 416)
SHAPES = {
    "densenet121": (IMAGENET_INPUT, (1, 1000)),
    "mobilenet_v2": (IMAGENET_INPUT, (1, 1000)),
    "resnet101": (IMAGENET_INPUT, (1, 1000)),
    "resnet18": (IMAGENET_INPUT, (1, 1000)),
    "resnet50": (IMAGENET_INPUT, (1, 1000)),
    "tinycnn": ((1, 3, 32, 32), (1, 10)),
    "vgg16": (IMAGENET_INPUT, (1, 1000)),
    "vgg19": (IMAGENET_INPUT, (1, 1000)),
    "yolov2": (DARKNET_INPUT, (1, 425, 13, 13)),
    "yolov2_tiny": (DARKNET_INPUT, (1, 425, 13, 13)),
}

#: The operations the project's graph tracer supports (modules, and functions fx records).
SUPPORTED_MODULES: tuple[type[nn.Module], ...] = (
    nn.Conv2d,
    nn.BatchNorm2d,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.SiLU,
    nn.Hardswish,
    nn.Sigmoid,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.Flatten,
    nn.Linear,
    nn.Dropout,
    nn.PixelUnshuffle,
)
SUPPORTED_FUNCTIONS: frozenset[object] = frozenset(
    {
        operator.add,
        torch.cat,
        torch.flatten,
        F.relu,
        F.relu6,
        F.leaky_relu,
        F.silu,
        F.hardswish,
        torch.sigmoid,
        F.adaptive_avg_pool2d,
        F.pad,
        F.pixel_unshuffle,
    }
)


@pytest.fixture(scope="module", params=BUILTIN_MODELS)
def name(request: pytest.FixtureRequest) -> str:
    """A built-in model's name; module scope makes pytest run each model's tests together."""
    value: str = request.param
    return value


@pytest.fixture(scope="module")
def model(name: str) -> nn.Module:
    """The model built once with seed 0."""
    return build_model(name)


@pytest.fixture(scope="module")
def output(name: str, model: nn.Module) -> torch.Tensor:
    """The model's output for a fixed standard-normal input, computed once."""
    generator = torch.Generator().manual_seed(1234)
    image = torch.randn(model_input_shape(name), generator=generator)
    with torch.no_grad():
        result: torch.Tensor = model(image)
    return result


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let a test register models without leaking them into the other tests."""
    monkeypatch.setattr(zoo_registry, "_REGISTRY", dict(zoo_registry._REGISTRY))
    yield


def _parameter_count(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def _same_weights(first: nn.Module, second: nn.Module) -> bool:
    first_state, second_state = first.state_dict(), second.state_dict()
    assert first_state.keys() == second_state.keys()
    return all(torch.equal(first_state[key], second_state[key]) for key in first_state)


def _all_weights_differ(first: nn.Module, second: nn.Module) -> bool:
    """Whether every floating-point parameter and statistic differs between the two models."""
    first_state, second_state = first.state_dict(), second.state_dict()
    assert first_state.keys() == second_state.keys()
    return not any(
        torch.equal(first_state[key], second_state[key])
        for key in first_state
        if first_state[key].is_floating_point()
    )


def test_the_zoo_lists_every_builtin_model_sorted() -> None:
    assert list_models() == sorted(BUILTIN_MODELS + EDGE_MODELS)


def test_each_model_has_the_published_parameter_count(name: str, model: nn.Module) -> None:
    assert _parameter_count(model) == PUBLISHED_PARAMETERS[name]


def test_the_yolo_counts_from_the_cfg_files_match_darknets_weight_files() -> None:
    # Cross-check of the hand transcription against darknet's published COCO weight files:
    # yolov2.weights is 203,934,260 bytes, a 16-byte header (major, minor, revision, int32 seen)
    # then float32s; yolov2-tiny.weights is 44,948,600 bytes with a 20-byte header (version 0.2
    # stores seen as 64 bits). Per layer the file holds biases, then for batch-normalised layers
    # scales, rolling means and rolling variances, then the weights: two floats per BN channel
    # more than torch's parameters (the rolling statistics are buffers in torch).
    up_to_layer_20 = [32, 64, 128, 64, 128, 256, 128, 256, 512, 256, 512, 256, 512, 1024, 512, 1024]
    yolov2_bn_channels = sum([*up_to_layer_20, 512, 1024, 1024, 1024, 64, 1024])
    tiny_bn_channels = sum([16, 32, 64, 128, 256, 512, 1024, 512])
    assert YOLOV2_PARAMETERS + 2 * yolov2_bn_channels == (203_934_260 - 16) // 4
    assert YOLOV2_TINY_PARAMETERS + 2 * tiny_bn_channels == (44_948_600 - 20) // 4
    assert (YOLOV2_PARAMETERS, YOLOV2_TINY_PARAMETERS) == (50_962_889, 11_232_057)


def test_each_model_has_its_published_input_shape(name: str) -> None:
    assert model_input_shape(name) == SHAPES[name][0]


def test_each_model_maps_its_input_to_the_published_output_shape(
    name: str, output: torch.Tensor
) -> None:
    assert tuple(output.shape) == SHAPES[name][1]


def test_each_model_gives_a_finite_output_of_sane_scale(output: torch.Tensor) -> None:
    assert torch.isfinite(output).all()
    assert 1e-2 < output.std().item() < 1e2


def test_each_model_is_built_in_eval_mode(model: nn.Module) -> None:
    assert not any(module.training for module in model.modules())


def test_each_model_has_non_trivial_batch_norm_statistics(model: nn.Module) -> None:
    norms = [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    for norm in norms:
        assert norm.running_mean is not None and norm.running_var is not None
        assert norm.running_mean.abs().max() > 0
        assert (norm.running_var - 1).abs().max() > 0
        assert (norm.weight - 1).abs().max() > 0 and norm.bias.abs().max() > 0


def test_each_model_builds_the_same_weights_from_the_same_seed(name: str, model: nn.Module) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(987)  # the caller's global random state must not matter
        rebuilt = build_model(name, seed=0)
    assert _same_weights(model, rebuilt)


def test_each_model_builds_different_weights_from_another_seed(name: str, model: nn.Module) -> None:
    assert _all_weights_differ(model, build_model(name, seed=1))


def test_each_model_traces_with_only_supported_operations(model: nn.Module) -> None:
    traced = torch.fx.symbolic_trace(model)
    modules = dict(traced.named_modules())
    for node in traced.graph.nodes:
        if node.op == "call_module":
            assert isinstance(modules[node.target], SUPPORTED_MODULES), node.format_node()
        elif node.op == "call_function":
            assert node.target in SUPPORTED_FUNCTIONS, node.format_node()
        else:
            assert node.op in {"placeholder", "output"}, node.format_node()


def test_tinycnn_exercises_every_layer_kind() -> None:
    traced = torch.fx.symbolic_trace(build_model("tinycnn"))
    modules = dict(traced.named_modules())
    convs = [module for module in modules.values() if isinstance(module, nn.Conv2d)]
    assert any(conv.stride == (2, 2) for conv in convs)
    assert any(conv.groups == conv.in_channels > 1 for conv in convs)
    kinds: set[object] = set()
    for node in traced.graph.nodes:
        if node.op == "call_module":
            kinds.add(type(modules[node.target]))
        elif node.op == "call_function":
            kinds.add(node.target)
    required: set[object] = {
        nn.Conv2d,
        nn.BatchNorm2d,
        F.relu,
        nn.MaxPool2d,
        operator.add,
        torch.cat,
        nn.AvgPool2d,
        nn.AdaptiveAvgPool2d,
        torch.flatten,
        nn.Linear,
    }
    assert required <= kinds


def test_building_a_model_leaves_the_global_random_state_untouched() -> None:
    before = torch.random.get_rng_state()
    build_model("tinycnn", seed=5)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_an_unknown_model_is_an_error_that_lists_the_known_models() -> None:
    with pytest.raises(PartitionError) as raised:
        build_model("vgg17")
    message = str(raised.value)
    assert message.startswith("unknown model 'vgg17'; known models: densenet121, efficientnet_b0")
    assert all(known in message for known in BUILTIN_MODELS + EDGE_MODELS)


def test_the_input_shape_of_an_unknown_model_is_an_error() -> None:
    with pytest.raises(PartitionError, match="unknown model 'nope'; known models: densenet121"):
        model_input_shape("nope")


def _small_model() -> nn.Module:
    return init_weights(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()))


@pytest.mark.usefixtures("isolated_registry")
def test_a_registered_model_is_listed_and_built_with_its_seed() -> None:
    register_model("my_net", _small_model, (1, 3, 8, 8))
    assert "my_net" in list_models()
    assert model_input_shape("my_net") == (1, 3, 8, 8)
    first, again, other = build_model("my_net"), build_model("my_net"), build_model("my_net", 1)
    assert not first.training
    assert _same_weights(first, again)
    assert _all_weights_differ(first, other)
    assert first(torch.randn(1, 3, 8, 8)).shape == (1, 4, 6, 6)


@pytest.mark.usefixtures("isolated_registry")
def test_registering_a_taken_name_is_an_error_that_names_it() -> None:
    with pytest.raises(ValueError, match="model 'resnet18' is already registered"):
        register_model("resnet18", _small_model, (1, 3, 8, 8))
    assert model_input_shape("resnet18") == IMAGENET_INPUT


@pytest.mark.usefixtures("isolated_registry")
def test_a_taken_name_can_be_replaced_on_request() -> None:
    register_model("resnet18", _small_model, (1, 3, 8, 8), replace=True)
    assert model_input_shape("resnet18") == (1, 3, 8, 8)
    assert _parameter_count(build_model("resnet18")) == 3 * 4 * 9 + 4 + 2 * 4


@pytest.mark.usefixtures("isolated_registry")
@pytest.mark.parametrize(
    ("model_name", "shape", "message"),
    [
        ("", (1, 3, 8, 8), "model name '' is not valid"),
        ("has space", (1, 3, 8, 8), "model name 'has space' is not valid"),
        ("flat", (1, 3, 8), r"input shape \(1, 3, 8\) of model 'flat' must be 4 positive ints"),
        ("zero", (1, 3, 0, 8), r"input shape \(1, 3, 0, 8\) of model 'zero'"),
    ],
)
def test_registering_a_bad_name_or_shape_is_an_error(
    model_name: str, shape: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        register_model(model_name, _small_model, shape)
    assert model_name not in list_models()


@pytest.mark.usefixtures("isolated_registry")
def test_a_builder_that_returns_no_module_is_an_error() -> None:
    def not_a_module() -> Any:
        return 3

    register_model("broken", not_a_module, (1, 3, 8, 8))
    with pytest.raises(TypeError, match="builder of model 'broken' returned int"):
        build_model("broken")


def test_a_seeded_build_repeats_for_a_seed_and_names_a_builder_that_returns_no_module() -> None:
    """One seeded builder serves the zoo, conftest models and ModelSpecs given to a test."""
    def builder() -> nn.Module:
        return nn.Linear(4, 3)

    first, again, other = (zoo_registry.build_seeded(builder, "lin", seed) for seed in (7, 7, 8))
    assert not first.training
    weights = [next(m.parameters()) for m in (first, again, other)]
    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])
    with pytest.raises(TypeError, match=r"builder of model 'bad' returned int, not an nn\.Module"):
        zoo_registry.build_seeded(lambda: 3, "bad")
