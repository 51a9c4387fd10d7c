"""A search made again in the same process is rebuilt from the first one's choice.

The memo is keyed by what decides a search (the graph's structure, the profiles, the
parameters, the energy model and the scenario), never by the weights' values: a model with
other weights gets the same plan, still exact for its own weights.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pytest_edgeenergy import Cluster, build_graph, estimate_energy, partition
from pytest_edgeenergy.energy.registry import get_energy_model
from pytest_edgeenergy.strategies.search import SearchStrategy
from pytest_edgeenergy.strategies.search.memo import (
    MEMO,
    Remembered,
    SearchMemo,
    structure_key,
)

SIZE = 24


def _model(seed: int, width: int = 16, stride: int = 2) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, width, 3, stride=stride, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 16, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)).eval()


@pytest.fixture(autouse=True)
def _empty_memo() -> None:
    MEMO.clear()


def test_a_model_with_other_weights_reuses_the_search_and_stays_exact() -> None:
    shape = (1, 3, SIZE, SIZE)
    first, second = SearchStrategy(), SearchStrategy()
    a = partition(_model(0), first, Cluster.homogeneous("rpi4", 3), shape)
    other = _model(1)
    b = partition(other, second, Cluster.homogeneous("rpi4", 3), shape)
    assert first.last is not None and not first.last.reused
    assert second.last is not None and second.last.reused
    assert a.plan.tasks == b.plan.tasks and a.plan.transfers == b.plan.transfers
    assert estimate_energy(a).max_device_j == estimate_energy(b).max_device_j
    assert b.plan.notes == a.plan.notes  # the report reads the same whichever search ran first
    x = torch.randn(shape)
    torch.testing.assert_close(b(x), other(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("change", ["input size", "cluster", "budget"])
def test_a_search_that_differs_in_what_decides_it_is_made_again(change: str) -> None:
    shape = (1, 3, SIZE, SIZE)
    partition(_model(0), SearchStrategy(), Cluster.homogeneous("rpi4", 3), shape)
    again = SearchStrategy(budget_s=5.0) if change == "budget" else SearchStrategy()
    cluster = Cluster.homogeneous("rpi4", 4 if change == "cluster" else 3)
    size = SIZE + 8 if change == "input size" else SIZE
    partition(_model(0), again, cluster, (1, 3, size, size))
    assert again.last is not None and not again.last.reused
    assert len(MEMO) == 2


def test_an_energy_model_given_as_an_object_is_never_remembered() -> None:
    shape = (1, 3, SIZE, SIZE)
    model = get_energy_model("board")
    for _ in range(2):
        search = SearchStrategy(energy_model=model)
        partition(_model(0), search, Cluster.homogeneous("rpi4", 2), shape)
        assert search.last is not None and not search.last.reused
    assert len(MEMO) == 0


def test_the_structure_key_sees_settings_and_shapes_but_not_weight_values() -> None:
    shape = (1, 3, SIZE, SIZE)
    key = structure_key(build_graph(_model(0), shape))
    assert key == structure_key(build_graph(_model(1), shape))
    assert key != structure_key(build_graph(_model(0, width=24), shape))
    assert key != structure_key(build_graph(_model(0, stride=1), shape))


def test_the_memo_forgets_the_oldest_search_first() -> None:
    memo = SearchMemo(size=2)
    entries = {k: Remembered(None, "layer", k) for k in "abc"}
    for k, entry in entries.items():
        memo.put(k, entry)
    assert memo.get("a") is None and memo.get("b") is entries["b"]
    memo.put("d", Remembered(None, "layer", "d"))  # b was used last: c goes
    assert memo.get("c") is None and memo.get("b") is entries["b"] and len(memo) == 2
    memo.put(None, Remembered(None, "layer", "none"))
    assert memo.get(None) is None and len(memo) == 2
