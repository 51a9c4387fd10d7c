"""Bad input gets one clear PartitionError naming the thing, its value and where it came from."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from shared_models import shared_model
from torch import nn

from pytest_edgeenergy import PartitionError, build_model, get_strategy, partition


class WithLocalResponseNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.lrn = nn.LocalResponseNorm(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lrn(self.conv(x))  # type: ignore[no-any-return]


class WithFunctionalSoftmax(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.conv(x), dim=1)


def test_an_unsupported_module_is_named_with_its_type_and_the_strategy() -> None:
    with pytest.raises(PartitionError, match=r"layer 'lrn' of type LocalResponseNorm is not "
                                             r"supported.*\(strategy 'spatial'\)$"):
        partition(WithLocalResponseNorm(), "spatial", 2, (1, 3, 8, 8))


def test_an_unsupported_function_is_named_with_its_type_and_the_strategy() -> None:
    with pytest.raises(PartitionError, match=r"layer 'softmax' of type softmax is not supported"
                                             r".*\(strategy 'layer'\)$"):
        partition(WithFunctionalSoftmax(), "layer", 2, (1, 3, 8, 8))


def test_an_unsupported_layer_is_reported_before_anything_runs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """partition() names the unsupported layer while tracing shapes on meta tensors: not one
    convolution runs on real data before the error."""
    real_conv2d = F.conv2d
    devices: list[str] = []

    def watched(input: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        devices.append(input.device.type)
        return real_conv2d(input, *args, **kwargs)

    monkeypatch.setattr(F, "conv2d", watched)
    with pytest.raises(PartitionError, match=r"layer 'lrn' of type LocalResponseNorm is not "
                                             r"supported.*\(strategy 'spatial'\)$"):
        partition(WithLocalResponseNorm(), "spatial", 2, (1, 3, 8, 8))
    assert all(device == "meta" for device in devices), devices


@pytest.mark.parametrize("count", [0, -1])
def test_a_device_count_below_one_is_refused(count: int) -> None:
    with pytest.raises(PartitionError, match=rf"device count must be at least 1, got {count}"):
        partition(build_model("tinycnn"), "layer", count, (1, 3, 32, 32))


def test_an_unknown_strategy_lists_the_known_ones() -> None:
    with pytest.raises(PartitionError, match=r"unknown strategy 'spatail' \(did you mean "
                                             r"'spatial'\?\); known strategies: layer, spatial, "
                                             r"output-channel, input-channel"):
        get_strategy("spatail")


def test_an_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(PartitionError, match=r"unknown model 'vgg17'.*resnet50.*vgg16"):
        build_model("vgg17")


def test_an_input_shape_that_does_not_fit_names_the_layer_and_the_shape() -> None:
    with pytest.raises(PartitionError, match=r"input shape \(1, 3, 64, 64\) does not fit model "
                                             r"VGG.*layer 'classifier\.0' \(Linear\)"):
        partition(shared_model("vgg16"), "output-channel", 2, (1, 3, 64, 64))


def test_an_input_with_the_wrong_channel_count_names_the_first_conv() -> None:
    with pytest.raises(PartitionError, match=r"input shape \(1, 1, 32, 32\) does not fit.*"
                                             r"layer 'stem' \(Conv2d\)"):
        partition(build_model("tinycnn"), "layer", 2, (1, 1, 32, 32))


def test_an_input_shape_that_is_not_4d_is_refused() -> None:
    with pytest.raises(PartitionError, match=r"input shape \(3, 32, 32\) is not \(N, C, H, W\)"):
        partition(build_model("tinycnn"), "layer", 2, (3, 32, 32))


def test_running_on_an_input_of_another_shape_than_planned_is_refused() -> None:
    pm = partition(build_model("tinycnn"), "layer", 2, (1, 3, 32, 32))
    with pytest.raises(PartitionError, match=r"input of shape \(2, 3, 32, 32\) does not match "
                                             r"the planned input shape \(1, 3, 32, 32\)"):
        pm(torch.zeros(2, 3, 32, 32))


def test_a_bad_fusion_depth_is_named() -> None:
    with pytest.raises(PartitionError, match=r"parameter fuse must be a whole number >= 1, got 0"):
        get_strategy("spatial", fuse=0)


def test_an_unknown_strategy_parameter_is_named() -> None:
    with pytest.raises(PartitionError, match=r"strategy 'layer' does not take parameters "
                                             r"\{'fuse': 2\}"):
        get_strategy("layer", fuse=2)


def test_a_model_in_training_mode_is_refused_with_the_remedy() -> None:
    model = build_model("tinycnn").train()
    with pytest.raises(PartitionError, match=r"model TinyCNN is in training mode: layer "
                                             r"'stem_bn' \(BatchNorm2d\) behaves differently "
                                             r"in training.*call model.eval\(\) first"):
        partition(model, "spatial", 2, (1, 3, 32, 32))


def test_the_trace_before_the_first_run_is_an_error() -> None:
    pm = partition(build_model("tinycnn"), "layer", 2, (1, 3, 32, 32))
    with pytest.raises(PartitionError, match="has not run yet"):
        _ = pm.trace
