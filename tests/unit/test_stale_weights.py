"""A partitioned model never runs on weights its model no longer has (issue 9, item 1)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from pytest_edgeenergy import (
    PartitionedModel,
    PartitionError,
    build_model,
    model_input_shape,
    partition,
)

TOLERANCE = 1e-5


def _relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out - ref).abs().max() / ref.abs().max())


def _partitioned(strategy: str = "spatial") -> tuple[nn.Module, PartitionedModel, torch.Tensor]:
    model = build_model("tinycnn")
    shape = model_input_shape("tinycnn")
    pm = partition(model, strategy, 2, shape)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    return model, pm, x


def _load_checkpoint(model: nn.Module) -> None:
    model.load_state_dict(build_model("tinycnn", seed=3).state_dict())


def _scale_in_place(model: nn.Module) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)


def _scale_through_data(model: nn.Module) -> None:
    for p in model.parameters():  # no version counter sees this
        p.data.mul_(1.5)


def _replace_data(model: nn.Module) -> None:
    for p in model.parameters():
        p.data = p.data * 1.5


def _edit_batchnorm_statistics(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.running_var is not None
            m.running_var.data.fill_(4.0)


def _change_batchnorm_eps(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = 0.5


def _replace_parameter(model: nn.Module) -> None:
    stem = model.get_submodule("stem")
    assert isinstance(stem, nn.Conv2d)
    stem.weight = nn.Parameter(torch.randn_like(stem.weight))


EDITS: dict[str, Callable[[nn.Module], None]] = {
    "load_state_dict": _load_checkpoint,
    "mul_ under no_grad": _scale_in_place,
    "mul_ through .data": _scale_through_data,
    "assigning .data": _replace_data,
    "BatchNorm statistics through .data": _edit_batchnorm_statistics,
    "BatchNorm eps": _change_batchnorm_eps,
    "a new Parameter": _replace_parameter,
}


@pytest.mark.parametrize("edit", list(EDITS), ids=list(EDITS))
@pytest.mark.parametrize("strategy", ["spatial", "input-channel"])
def test_a_partitioned_model_follows_its_models_weights_after_they_change(
        edit: str, strategy: str) -> None:
    model, pm, x = _partitioned(strategy)
    pm(x)  # ran once on the old weights
    EDITS[edit](model)
    with torch.no_grad():
        ref = model(x)
    assert _relative_error(pm(x), ref) <= TOLERANCE


def test_the_graph_a_partitioned_model_shows_holds_the_current_weights() -> None:
    model, pm, _ = _partitioned()
    before = pm.graph
    _load_checkpoint(model)
    after = pm.graph
    assert after is not before
    assert pm.graph is after  # unchanged weights: not derived again


def test_a_structure_change_the_plan_does_not_fit_is_refused_by_name() -> None:
    model, pm, x = _partitioned()
    model.stem = nn.Conv2d(3, 16, kernel_size=5, stride=2, padding=2, bias=False)
    with pytest.raises(PartitionError, match=r"changed since it was partitioned.*layer 'stem'"
                                             r".*partition\(\) again"):
        pm(x)


def test_a_model_switched_to_training_mode_is_refused_with_the_remedy() -> None:
    model, pm, x = _partitioned()
    model.train()
    with pytest.raises(PartitionError, match=r"changed since.*training mode.*model.eval\(\)"):
        pm(x)
    model.eval()
    with torch.no_grad():
        assert _relative_error(pm(x), model(x)) <= TOLERANCE
