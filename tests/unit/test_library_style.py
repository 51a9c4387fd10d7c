"""Models written the way model libraries write them partition exactly under every strategy.

See ``library_models`` for the families (timm- and torchvision-style code written here). Each is
partitioned over 2 and 3 devices by every strategy: the output equals the model's and the
measured trace equals the plan.
"""

from __future__ import annotations

from functools import cache

import pytest
import torch
from library_models import FAMILIES, BatchNormAct2d, build
from matrices import DEVICE_COUNTS
from torch import Tensor, nn

from pytest_edgeenergy import PartitionError, partition

STRATEGIES = ["layer", "spatial", "output-channel", "input-channel"]


@cache
def _reference(name: str) -> tuple[nn.Module, Tensor, Tensor]:
    model = build(name)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model, x, model(x)


def _check(model: nn.Module, x: Tensor, ref: Tensor, strategy: str, n: int) -> None:
    pm = partition(model, strategy, n, x.shape)
    out = pm(x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5 * max(1.0, float(ref.abs().max())))
    assert pm.trace.device_stats() == pm.plan.device_stats()


@pytest.mark.parametrize("n", DEVICE_COUNTS)
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_library_style_model_partitions_exactly_with_trace_equal_to_plan(
        family: str, strategy: str, n: int) -> None:
    model, x, ref = _reference(family)
    _check(model, x, ref, strategy, n)


class _BatchNormActNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = BatchNormAct2d(8, nn.SiLU)
        self.head = nn.Conv2d(8, 4, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.bn(self.conv(x)))  # type: ignore[no-any-return]


def test_a_batchnorm_that_calls_f_batch_norm_with_its_buffers_is_not_blamed_on_the_input_shape(
        ) -> None:
    # the reported bug: such a module failed during shape tracing and the user was told
    # "input shape (1, 3, 160, 160) does not fit model ..."
    model = _BatchNormActNet().eval()
    x = torch.randn(1, 3, 160, 160)
    with torch.no_grad():
        ref = model(x)
    pm = partition(model, "spatial", 2, (1, 3, 160, 160))
    torch.testing.assert_close(pm(x), ref, rtol=1e-4, atol=1e-5)
    assert len(pm.graph.layers) == 2  # the batch norm is folded into the convolution


class _ItemScaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x) * x.abs().max().item()  # type: ignore[no-any-return]


def test_a_model_that_runs_but_cannot_be_captured_says_so_and_does_not_blame_the_shape() -> None:
    with pytest.raises(PartitionError) as info:
        partition(_ItemScaled().eval(), "layer", 2, (1, 3, 16, 16))
    message = str(info.value)
    assert "could not be captured: layer 'item' (Tensor.item)" in message
    assert "the model itself runs on input shape (1, 3, 16, 16), so the shape is not the " \
           "problem" in message
    assert "does not fit" not in message


def test_a_batchnorm_in_training_mode_called_functionally_is_refused_with_the_remedy() -> None:
    model = _BatchNormActNet().eval()
    model.bn.train()
    with pytest.raises(PartitionError, match=r"call model\.eval\(\) first|training mode"):
        partition(model, "layer", 2, (1, 3, 16, 16))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_library_style_model_partitions_exactly_under_the_search_strategy(family: str) -> None:
    # the search strategy places the same ops through the same planner region arithmetic
    model, x, ref = _reference(family)
    _check(model, x, ref, "search", 3)
