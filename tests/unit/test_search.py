"""The ``search`` strategy: never worse than the classic strategies, exact, explained.

Energies here are computed independently of the search's own bookkeeping: each classic plan is
made by its own strategy and every plan is estimated with ``estimate_energy``.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_edgeenergy import (
    Cluster,
    PartitionError,
    build_graph,
    build_model,
    estimate_energy,
    get_strategy,
    list_models,
    list_strategies,
    load_device,
    model_input_shape,
    partition,
)
from pytest_edgeenergy.energy import EnergyEstimate
from pytest_edgeenergy.graph.layergraph import LayerGraph
from pytest_edgeenergy.randomcnn import CNNSpec, RandomCNN, cnn_specs
from pytest_edgeenergy.strategies.search import SearchStrategy
from pytest_edgeenergy.strategies.search.memo import MEMO
from pytest_edgeenergy.strategies.search.proportions import optimal_shares
from pytest_edgeenergy.strategies.search.segments import live_tensors, spans

CLASSIC = ["layer", "spatial", "output-channel", "input-channel"]
HETEROGENEOUS = "rpi4,rpi4,jetson-nano-10w,rpi3bplus"
CLUSTERS = ["2xrpi4", "4xrpi4", "8xrpi4", HETEROGENEOUS]
LIGHT_MODELS = {"tinycnn"}
"""Zoo models whose never-worse cases run by default; the rest are marked heavy."""


def _graph(model: str) -> LayerGraph:
    return build_graph(build_model(model), model_input_shape(model))


def _classic(graph: LayerGraph, cluster: Cluster) -> dict[str, EnergyEstimate]:
    return {name: estimate_energy(get_strategy(name).plan(graph, cluster), cluster)
            for name in CLASSIC}


def _value(est: EnergyEstimate, objective: str) -> float:
    return float(getattr(est, objective))


def _equivalent(out: torch.Tensor, ref: torch.Tensor) -> None:
    atol = 1e-5 * max(1.0, float(ref.abs().max()))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=atol)


def test_search_is_registered_beside_the_classic_strategies() -> None:
    assert list_strategies()[:5] == [*CLASSIC, "search"]
    strategy = get_strategy("search", objective="total_j", seed=3)
    assert isinstance(strategy, SearchStrategy)
    assert strategy.params == {"objective": "total_j", "deadline_s": None, "budget_s": 10.0,
                               "seed": 3}


NEVER_WORSE_CASES = [
    pytest.param(model, cluster, id=f"{model}-{cluster}",
                 marks=() if model in LIGHT_MODELS else pytest.mark.heavy)
    for model in list_models() for cluster in CLUSTERS]


@pytest.mark.parametrize(("model", "spec"), NEVER_WORSE_CASES)
def test_the_search_is_never_worse_than_the_best_classic_strategy(model: str, spec: str) -> None:
    cluster = Cluster.parse(spec)
    graph = _graph(model)
    # the default budget on the heavy cases; a small one keeps the default run quick (the
    # guarantee holds for any budget: the classic plans are always among the candidates)
    strategy = SearchStrategy(budget_s=2) if model in LIGHT_MODELS else SearchStrategy()
    found = estimate_energy(strategy.plan(graph, cluster), cluster)
    best = min(est.max_device_j for est in _classic(graph, cluster).values() if est.fits)
    assert found.fits
    assert found.max_device_j <= best * (1 + 1e-12)
    assert strategy.last is not None and strategy.last.candidates > 0


@pytest.mark.parametrize("objective", ["total_j", "makespan_s"])
def test_every_objective_is_at_most_the_best_classic_strategys(objective: str) -> None:
    cluster = Cluster.parse(HETEROGENEOUS)
    graph = _graph("tinycnn")
    plan = SearchStrategy(objective=objective, budget_s=2).plan(graph, cluster)
    best = min(_value(est, objective) for est in _classic(graph, cluster).values())
    assert _value(estimate_energy(plan, cluster), objective) <= best * (1 + 1e-12)


@pytest.mark.parametrize("scenario", ["workload=stream", "network=shared", "power=sleep"])
def test_under_a_scenario_the_search_is_never_worse_than_the_classic_strategies(
        scenario: str) -> None:
    cluster = Cluster.parse("4xrpi4")
    graph = _graph("tinycnn")
    plan = SearchStrategy(budget_s=1, scenario=scenario).plan(graph, cluster)
    best = min(estimate_energy(get_strategy(name).plan(graph, cluster), cluster,
                               scenario=scenario).max_device_j for name in CLASSIC)
    found = estimate_energy(plan, cluster, scenario=scenario)
    assert found.max_device_j <= best * (1 + 1e-12)
    said = plan.notes["search"].splitlines()[0]
    assert "under scenario " in said and scenario in said


@pytest.mark.parametrize("spec", ["4xrpi4", pytest.param(HETEROGENEOUS, marks=pytest.mark.heavy)])
def test_under_a_deadline_the_plan_meets_it_and_beats_every_classic_that_does(spec: str) -> None:
    cluster = Cluster.parse(spec)
    graph = _graph("resnet18")
    classic = _classic(graph, cluster)
    deadline_s = 1.2 * min(est.makespan_s for est in classic.values())
    plan = SearchStrategy(deadline_s=deadline_s, budget_s=4).plan(graph, cluster)
    found = estimate_energy(plan, cluster)
    assert found.makespan_s <= deadline_s
    meeting = [est for est in classic.values() if est.makespan_s <= deadline_s]
    assert meeting
    assert all(found.max_device_j < est.max_device_j for est in meeting)


@pytest.mark.parametrize(("model", "spec"), [
    ("tinycnn", HETEROGENEOUS), ("tinycnn", "8xrpi4"),
    pytest.param("resnet18", "4xrpi4", marks=pytest.mark.heavy)])
def test_a_found_plan_computes_the_models_output_and_its_trace_is_its_plan(model: str,
                                                                           spec: str) -> None:
    net = build_model(model)
    shape = model_input_shape(model)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = net(x)
    pm = partition(net, SearchStrategy(budget_s=2), Cluster.parse(spec), shape)
    _equivalent(pm(x), ref)
    assert pm.trace.device_stats() == pm.plan.device_stats()
    assert pm.plan.strategy == "search"


PROFILES = ["rpi4", "rpi3bplus", "jetson-nano-10w", "jetson-nano-5w"]


@settings(max_examples=12, deadline=None)
@given(spec=cnn_specs(), names=st.lists(st.sampled_from(PROFILES), min_size=1, max_size=6),
       objective=st.sampled_from(["max_device_j", "total_j", "makespan_s"]))
def test_a_searched_random_cnn_equals_the_cnn_and_its_trace_equals_its_plan(
        spec: CNNSpec, names: list[str], objective: str) -> None:
    model = RandomCNN(spec)
    cluster = Cluster(tuple(load_device(p) for p in names))
    x = torch.randn(spec.input_shape, generator=torch.Generator().manual_seed(spec.seed))
    with torch.no_grad():
        ref = model(x)
    strategy = SearchStrategy(objective=objective, budget_s=0.5)
    pm = partition(model, strategy, cluster, spec.input_shape)
    out = pm(x)
    assert out.shape == ref.shape
    _equivalent(out, ref)
    assert pm.trace.device_stats() == pm.plan.device_stats()
    found = estimate_energy(pm.plan, cluster)
    classic = _classic(pm.graph, cluster)
    assert _value(found, objective) <= min(_value(e, objective) for e in classic.values()) * (
        1 + 1e-12)


def test_the_same_seed_and_budget_give_the_same_plan() -> None:
    cluster = Cluster.parse(HETEROGENEOUS)
    graph = _graph("tinycnn")
    first = SearchStrategy(seed=7, budget_s=2).plan(graph, cluster)
    MEMO.clear()  # search again, rather than rebuild the remembered choice
    again = SearchStrategy(seed=7, budget_s=2).plan(graph, cluster)
    # the plan-level note ends with the search's own wall and CPU time, which vary
    timed = [plan.notes.pop("search").rsplit(" in ", 1)[0] for plan in (first, again)]
    assert timed[0] == timed[1]
    assert first.to_json() == again.to_json()


def test_memory_is_a_hard_constraint() -> None:
    rpi4 = load_device("rpi4")
    small = dataclasses.replace(rpi4, name="rpi4-8mb", memory_bytes=8 * 2**20)
    cluster = Cluster((rpi4, small))
    graph = _graph("resnet18")
    assert not any(est.fits for est in _classic(graph, cluster).values())
    found = estimate_energy(SearchStrategy(budget_s=2).plan(graph, cluster), cluster)
    assert found.fits


def test_the_plan_says_what_each_segment_chose_and_how_it_compares() -> None:
    cluster = Cluster.parse("4xrpi4")
    strategy = SearchStrategy(budget_s=2)
    text = str(strategy.plan(_graph("tinycnn"), cluster))
    assert "segment 0 (" in text and "best alternative for this segment:" in text
    assert "search minimised max_device_j:" in text
    assert all(f"{name} " in text for name in CLASSIC)
    report = strategy.last
    assert report is not None and report.segments
    assert report.candidates == report.fragments + report.partials + report.simulated
    assert report.value <= report.best_classic()[1]


def test_split_proportions_minimise_the_largest_device_energy_by_hand() -> None:
    # two equally fast devices, the second spends 3x the joules per MAC, no static power:
    # the maximum of 1*s1 and 3*s2 is smallest at s1 = 3/4, s2 = 1/4 (both 0.75)
    shares = optimal_shares("max_device_j", [1.0, 1.0], [1.0, 3.0], [0.0, 0.0])
    assert shares == pytest.approx((0.75, 0.25), abs=1e-6)
    # for the total, everything goes to the cheaper device
    assert optimal_shares("total_j", [1.0, 1.0], [1.0, 3.0], [0.0, 0.0]) == pytest.approx(
        (1.0, 0.0), abs=1e-9)
    # for the makespan, shares follow speed
    assert optimal_shares("makespan_s", [3.0, 1.0], [1.0, 1.0], [1.0, 1.0]) == (0.75, 0.25)
    # identical devices split evenly whatever the objective
    assert optimal_shares("max_device_j", [2.0] * 4, [1.0] * 4, [5.0] * 4) == pytest.approx(
        (0.25,) * 4, abs=1e-6)


@pytest.mark.parametrize("model", ["resnet18", "mobilenet_v2", "tinycnn"])
def test_segments_never_cut_a_residual_or_concatenation_block(model: str) -> None:
    graph = _graph(model)
    live = live_tensors(graph)
    for span in spans(graph, 1):
        assert live[span.start] == {span.entry} and live[span.stop] == {span.exit}
        inside = {layer.name for layer in graph.layers[span.start:span.stop]}
        for layer in graph.layers[span.start:span.stop]:
            assert all(t in inside or t == span.entry for t in layer.inputs)


@pytest.mark.parametrize(("params", "named"), [
    ({"objective": "energy"}, "objective"), ({"deadline_s": -1.0}, "deadline_s"),
    ({"deadline_s": math.nan}, "deadline_s"), ({"budget_s": 0}, "budget_s"),
    ({"seed": "one"}, "seed")])
def test_a_bad_parameter_is_refused_with_its_name_and_value(params: dict[str, object],
                                                            named: str) -> None:
    with pytest.raises(PartitionError, match=f"parameter {named} .*{params[named]!r}"):
        get_strategy("search", **params)


def test_a_cluster_without_profiles_is_refused() -> None:
    class Speeds:
        speeds = (1.0, 1.0)

        def __len__(self) -> int:
            return 2

    with pytest.raises(PartitionError, match="needs a Cluster"):
        SearchStrategy().plan(_graph("tinycnn"), Speeds())
