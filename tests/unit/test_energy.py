"""Tests of the energy models: hand-computed joules, properties, the registry and the errors.

Every expected number is recomputed here from the profile's fields and the plan's own counts,
with the formulas of docs/energy-model.md ("The `board` model") written out again, not imported.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable

import pytest
import torch
from energy_cases import (
    CONV_INPUT,
    STRATEGIES,
    P,
    conv_model,
    conv_plan,
    link_s,
    make_profile,
    small_cnn,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pytest_edgeenergy.cluster import Cluster
from pytest_edgeenergy.energy import (
    DeviceUsage,
    EnergyError,
    EnergyEstimate,
    EnergyTerms,
    estimate_energy,
    get_energy_model,
    list_energy_models,
    register_energy_model,
    unregister_energy_model,
)
from pytest_edgeenergy.errors import EdgeEnergyError
from pytest_edgeenergy.graph.box import Box
from pytest_edgeenergy.graph.build import build_graph
from pytest_edgeenergy.graph.layergraph import LayerGraph
from pytest_edgeenergy.partitioned import partition
from pytest_edgeenergy.plan import Plan
from pytest_edgeenergy.profiles import DeviceProfile, load_device
from pytest_edgeenergy.strategies import get_strategy
from pytest_edgeenergy.zoo import build_model, model_input_shape

CHANNEL_STRATEGIES = ["output-channel", "input-channel"]


@functools.cache
def graph_of(model: str) -> LayerGraph:
    """The layer graph of ``small`` (the CNN above) or of a zoo model."""
    if model == "small":
        return build_graph(small_cnn(), (1, 3, 8, 8))
    return build_graph(build_model(model), model_input_shape(model))


@functools.cache
def plan_of(model: str, strategy: str, n: int) -> Plan:
    """``model`` split over ``n`` devices (the speeds of a homogeneous cluster)."""
    return get_strategy(strategy).plan(graph_of(model), Cluster((P,) * n))


def busy_by_hand(plan: Plan, profile: DeviceProfile) -> list[float]:
    """Σ over each device's tasks of max(macs / macs_per_s, bytes_touched / mem_bytes_per_s)."""
    busy = [0.0] * plan.n_devices
    for t in plan.tasks:
        busy[t.device] += max(t.macs / profile.macs_per_s,
                              (t.read_bytes + t.write_bytes + t.weight_bytes)
                              / profile.mem_bytes_per_s)
    return busy


def comm_j_by_hand(plan: Plan, profile: DeviceProfile) -> list[float]:
    """tx_j_per_byte · bytes sent + rx_j_per_byte · bytes received, from the transfers."""
    comm = [0.0] * plan.n_devices
    for t in plan.transfers:
        comm[t.src] += profile.tx_j_per_byte * t.bytes
        comm[t.dst] += profile.rx_j_per_byte * t.bytes
    return comm


def unpartitioned_compute_j(graph: LayerGraph, profile: DeviceProfile) -> float:
    """The model's compute energy run whole on one device, from the graph alone."""
    busy_s = 0.0
    for layer in graph.layers:
        out = Box.full(layer.out_shape)
        read = sum(graph.tensor_bytes(t, box.clip(graph.shape(t)))
                   for t, box in zip(layer.inputs, layer.op.input_boxes(out, None), strict=True)
                   if box is not None)
        touched = read + graph.tensor_bytes(layer.name) + layer.op.weight_bytes(None)
        busy_s += max(graph.layer_macs(layer) / profile.macs_per_s,
                      touched / profile.mem_bytes_per_s)
    return (profile.active_w - profile.idle_w) * busy_s


# ---- hand-computed ------------------------------------------------------------------------

def test_a_single_convolution_on_one_device_costs_active_power_times_its_time() -> None:
    estimate = estimate_energy(conv_plan("layer", 1), Cluster((P,)))
    macs = 4 * 4 * 4 * (2 * 3 * 3)
    touched = 2 * 16 * 4 + 4 * 16 * 4 + (4 * 18 + 4) * 4
    busy_s = max(macs / P.macs_per_s, touched / P.mem_bytes_per_s)
    [device] = estimate.devices
    assert (device.macs, device.bytes_touched, device.bytes_sent, device.bytes_received) == (
        macs, touched, 0, 0)
    assert estimate.makespan_s == pytest.approx(busy_s, rel=1e-12)
    assert device.busy_s == pytest.approx(busy_s, rel=1e-12)
    assert device.compute_j == pytest.approx((P.active_w - P.idle_w) * busy_s, rel=1e-12)
    assert device.comm_j == 0.0
    assert device.static_j == pytest.approx(P.idle_w * busy_s, rel=1e-12)
    # makespan == busy_s: the idle and the active share add up to the active power.
    assert device.total_j == pytest.approx(P.active_w * busy_s, rel=1e-12)
    assert estimate.total_j == estimate.max_device_j == estimate.mean_device_j == device.total_j


# Makespans of the conv split in two, by hand (derivations in tests/unit/test_schedule.py): a task
# of half the conv is 576 MACs = 0.576 ms, compute-bound; the input-channel reduction touches
# 784 bytes and no MACs, 0.784 ms.
HAND_MAKESPAN_S = {
    "layer": 1152 / P.macs_per_s,  # one layer cannot be cut: all on device 0, nothing sent
    "spatial": link_s(96) + 576 / P.macs_per_s + link_s(128),
    "output-channel": link_s(128) + 576 / P.macs_per_s + link_s(128),
    "input-channel": link_s(64) + 576 / P.macs_per_s + link_s(256) + 784 / P.mem_bytes_per_s,
}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_convolution_split_in_two_costs_what_the_formulas_say(strategy: str) -> None:
    plan = conv_plan(strategy, 2)
    estimate = estimate_energy(plan, Cluster((P, P)))
    makespan_s = HAND_MAKESPAN_S[strategy]
    assert estimate.makespan_s == pytest.approx(makespan_s, rel=1e-12)
    busy = busy_by_hand(plan, P)
    comm = comm_j_by_hand(plan, P)
    for d, device in enumerate(estimate.devices):
        compute_j = (P.active_w - P.idle_w) * busy[d]
        static_j = P.idle_w * makespan_s
        assert device.busy_s == pytest.approx(busy[d], rel=1e-12)
        assert device.compute_j == pytest.approx(compute_j, rel=1e-12)
        assert device.comm_j == pytest.approx(comm[d], rel=1e-12)
        assert device.static_j == pytest.approx(static_j, rel=1e-12)
        assert device.total_j == pytest.approx(compute_j + comm[d] + static_j, rel=1e-12)
        assert device.macs == sum(t.macs for t in plan.tasks if t.device == d)
    # Every MAC of the layer is computed exactly once, whatever the split.
    assert sum(d.macs for d in estimate.devices) == 1152
    assert estimate.total_j == pytest.approx(sum(d.total_j for d in estimate.devices), rel=1e-12)
    assert estimate.max_device_j == max(d.total_j for d in estimate.devices)
    assert estimate.mean_device_j == pytest.approx(estimate.total_j / 2, rel=1e-12)


def test_the_layer_wise_split_charges_the_idle_device_its_static_energy() -> None:
    estimate = estimate_energy(conv_plan("layer", 2), Cluster((P, P)))
    idle = estimate.devices[1]
    assert (idle.busy_s, idle.compute_j, idle.macs, idle.comm_j) == (0.0, 0.0, 0, 0.0)
    assert idle.static_j == pytest.approx(P.idle_w * HAND_MAKESPAN_S["layer"], rel=1e-12)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_ops_model_prices_macs_and_memory_bytes_per_operation(strategy: str) -> None:
    plan = conv_plan(strategy, 2)
    estimate = estimate_energy(plan, Cluster((P, P)), model="ops")
    mac_j = 3.7e-12 + 0.9e-12  # Horowitz 2014: fp32 multiply + fp32 add, 45 nm
    byte_j = 1.95e-9 / 8  # midpoint of 1.3-2.6 nJ per 64-bit DRAM access
    comm = comm_j_by_hand(plan, P)
    assert (estimate.model, estimate.model_version) == ("ops", "1")
    for d, device in enumerate(estimate.devices):
        tasks = [t for t in plan.tasks if t.device == d]
        compute_j = sum(mac_j * t.macs + byte_j * t.bytes_touched for t in tasks)
        assert device.compute_j == pytest.approx(compute_j, rel=1e-12)
        assert device.comm_j == pytest.approx(comm[d], rel=1e-12)
        assert device.static_j == pytest.approx(P.idle_w * HAND_MAKESPAN_S[strategy], rel=1e-12)


def test_a_device_whose_peak_memory_exceeds_its_memory_does_not_fit() -> None:
    plan = conv_plan("spatial", 2)
    peaks = [s.peak_bytes for s in plan.device_stats()]
    roomy = dataclasses.replace(P, memory_bytes=max(peaks))
    cramped = dataclasses.replace(P, memory_bytes=min(peaks) - 1)
    assert estimate_energy(plan, Cluster((roomy, roomy))).fits
    estimate = estimate_energy(plan, Cluster((roomy, cramped)))
    assert [d.fits for d in estimate.devices] == [True, False]
    assert [d.peak_bytes for d in estimate.devices] == peaks
    assert not estimate.fits


# ---- properties ---------------------------------------------------------------------------

def busier_than_idle(idle_w: float, extra_w: float, macs_per_s: float, mem_bytes_per_s: float,
                     net_bytes_per_s: float, net_latency_s: float, tx_j_per_byte: float,
                     rx_j_per_byte: float) -> DeviceProfile:
    """A profile whose active power is ``extra_w`` above its idle power, as the loader demands."""
    return make_profile(idle_w=idle_w, active_w=idle_w + extra_w, macs_per_s=macs_per_s,
                        mem_bytes_per_s=mem_bytes_per_s, net_bytes_per_s=net_bytes_per_s,
                        net_latency_s=net_latency_s, tx_j_per_byte=tx_j_per_byte,
                        rx_j_per_byte=rx_j_per_byte)


profiles = st.builds(
    busier_than_idle,
    idle_w=st.floats(0.01, 10.0),
    extra_w=st.floats(0.0, 20.0),
    macs_per_s=st.floats(1e3, 1e12),
    mem_bytes_per_s=st.floats(1e3, 1e12),
    net_bytes_per_s=st.floats(1e3, 1e10),
    net_latency_s=st.floats(0.0, 1e-2),
    tx_j_per_byte=st.floats(0.0, 1e-6),
    rx_j_per_byte=st.floats(0.0, 1e-6),
)
counts = st.integers(0, 10**12)


@settings(max_examples=200, deadline=None)
@given(profile=profiles, model=st.sampled_from(["board", "ops"]), sent=counts, received=counts,
       more_sent=counts, more_received=counts)
def test_more_bytes_moved_never_lowers_comm_energy(profile: DeviceProfile, model: str,
                                                   sent: int, received: int, more_sent: int,
                                                   more_received: int) -> None:
    def comm_j(s: int, r: int) -> float:
        usage = DeviceUsage(macs=0, bytes_touched=0, bytes_sent=s, bytes_received=r,
                            busy_s=0.0, comm_s=0.0, makespan_s=0.0)
        return get_energy_model(model).device_energy(profile, usage).comm_j

    assert comm_j(sent + more_sent, received + more_received) >= comm_j(sent, received)


@settings(max_examples=60, deadline=None)
@given(strategy=st.sampled_from(STRATEGIES), n=st.integers(2, 4), profile=profiles,
       which=st.integers(0, 10**6), factor=st.integers(1, 1000))
def test_a_larger_transfer_in_a_plan_never_lowers_either_ends_comm_energy(
        strategy: str, n: int, profile: DeviceProfile, which: int, factor: int) -> None:
    plan = plan_of("small", strategy, n)
    transfers = plan.transfers
    if not transfers:
        return
    bigger = transfers[which % len(transfers)]
    steps = [dataclasses.replace(s, bytes=s.bytes * factor) if s is bigger else s
             for s in plan.steps]
    cluster = Cluster((profile,) * n)
    before = estimate_energy(plan, cluster).devices
    after = estimate_energy(dataclasses.replace(plan, steps=steps), cluster).devices
    assert after[bigger.src].comm_j >= before[bigger.src].comm_j
    assert after[bigger.dst].comm_j >= before[bigger.dst].comm_j


@settings(max_examples=40, deadline=None)
@given(model=st.sampled_from(["small", "resnet18"]), profile=profiles)
def test_with_one_device_every_strategy_reduces_to_the_unpartitioned_cost(
        model: str, profile: DeviceProfile) -> None:
    expected_j = unpartitioned_compute_j(graph_of(model), profile)
    for strategy in STRATEGIES:
        plan = plan_of(model, strategy, 1)
        assert plan.transfers == []
        estimate = estimate_energy(plan, Cluster((profile,)))
        [device] = estimate.devices
        assert (device.bytes_sent, device.bytes_received, device.comm_j) == (0, 0, 0.0)
        assert device.compute_j == pytest.approx(expected_j, rel=1e-12)
        # No waiting on one device: the makespan is its busy time.
        assert estimate.makespan_s == pytest.approx(device.busy_s, rel=1e-12)


def test_with_one_device_spatial_computes_what_a_strided_1x1_conv_skips() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 1, stride=2)).eval()
    graph = build_graph(model, (1, 3, 4, 4))
    plan = get_strategy("spatial").plan(graph, Cluster((P,)))
    assert plan.total_macs == graph.total_macs()
    [device] = estimate_energy(plan, Cluster((P,))).devices
    assert device.compute_j == pytest.approx(unpartitioned_compute_j(graph, P), rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(model=st.sampled_from(["small", "resnet18"]), strategy=st.sampled_from(CHANNEL_STRATEGIES),
       n=st.integers(2, 8), macs_per_s=st.floats(1e3, 1e12), watts=st.floats(0.0, 10.0))
def test_with_unlimited_memory_bandwidth_channel_splits_compute_no_extra_energy(
        model: str, strategy: str, n: int, macs_per_s: float, watts: float) -> None:
    profile = make_profile(mem_bytes_per_s=1e30, macs_per_s=macs_per_s, active_w=1.0 + watts)
    one = estimate_energy(plan_of(model, strategy, 1), Cluster((profile,)))
    split = estimate_energy(plan_of(model, strategy, n), Cluster((profile,) * n))
    split_j = sum(d.compute_j for d in split.devices)
    assert split_j == pytest.approx(one.devices[0].compute_j, rel=1e-9)


@pytest.mark.parametrize("strategy", CHANNEL_STRATEGIES)
def test_with_finite_memory_bandwidth_channel_splits_may_cost_more_compute_energy(
        strategy: str, record_property: Callable[[str, object], None]) -> None:
    rpi4 = load_device("rpi4")
    one = estimate_energy(plan_of("resnet18", strategy, 1), Cluster((rpi4,)))
    one_j = one.devices[0].compute_j
    for n in (2, 4, 8):
        split = estimate_energy(plan_of("resnet18", strategy, n), Cluster((rpi4,) * n))
        split_j = sum(d.compute_j for d in split.devices)
        # Each device reads the full input (output-channel) or writes a full partial sum
        # (input-channel): memory-bound layers then cost more in total, never less.
        assert split_j >= one_j * (1 - 1e-9)
        excess = split_j / one_j - 1
        record_property(f"resnet18_{strategy}_{n}xrpi4_compute_excess", f"{excess:.4f}")
        print(f"resnet18 {strategy} on {n}xrpi4: compute energy {split_j:.3f} J vs "
              f"{one_j:.3f} J on one device (+{100 * excess:.1f} %)")


# ---- the API, the registry and the errors -------------------------------------------------

def test_a_partitioned_model_brings_its_own_plan_and_cluster() -> None:
    cluster = Cluster((P, P))
    pm = partition(conv_model(), "spatial", cluster, CONV_INPUT)
    assert estimate_energy(pm) == estimate_energy(pm.plan, cluster)
    assert estimate_energy(pm).cluster == "2xpencil"


def test_an_estimate_is_deterministic_json_able_and_names_its_model() -> None:
    plan = plan_of("small", "input-channel", 3)
    first = estimate_energy(plan, Cluster((P,) * 3))
    assert first == estimate_energy(plan, Cluster((P,) * 3))
    data = json.loads(json.dumps(first.to_dict()))
    assert (data["model"], data["model_version"], data["strategy"]) == (
        "board", "1", "input-channel")
    assert len(data["devices"]) == 3
    assert data["total_j"] == pytest.approx(first.total_j)
    assert set(data["devices"][0]) >= {"busy_s", "comm_s", "compute_j", "comm_j", "static_j",
                                       "total_j", "peak_bytes", "fits", "macs", "bytes_sent",
                                       "bytes_received"}


def test_the_built_in_models_are_listed_board_first() -> None:
    assert list_energy_models()[:2] == ["board", "ops"]
    assert get_energy_model("board").name == "board"


def test_an_unknown_energy_model_names_the_known_ones() -> None:
    with pytest.raises(EnergyError, match=r"unknown energy model 'bord' \(did you mean "
                                          r"'board'\?\); known energy models: board, ops"):
        estimate_energy(conv_plan("layer", 1), Cluster((P,)), model="bord")
    assert issubclass(EnergyError, EdgeEnergyError)


def test_a_cluster_whose_size_differs_from_the_plans_is_refused() -> None:
    with pytest.raises(EnergyError, match=r"plan \(spatial\) is for 2 device\(s\) but the "
                                          r"cluster 4xpencil has 4"):
        estimate_energy(conv_plan("spatial", 2), Cluster((P,) * 4))
    pm = partition(conv_model(), "layer", Cluster((P, P)), CONV_INPUT)
    with pytest.raises(EnergyError, match="has 3"):
        estimate_energy(pm, Cluster((P,) * 3))


def test_a_bare_plan_without_a_cluster_is_refused() -> None:
    with pytest.raises(EnergyError, match="needs the cluster it runs on"):
        estimate_energy(conv_plan("spatial", 2))


class _Flat:
    """A made-up model: one joule per device, whatever it did."""

    name = "flat"
    version = "0.1"

    def device_energy(self, profile: DeviceProfile, usage: DeviceUsage) -> EnergyTerms:
        return EnergyTerms(compute_j=1.0, comm_j=0.0, static_j=0.0)


def test_a_registered_model_is_used_by_name_and_recorded_in_the_estimate() -> None:
    register_energy_model(_Flat())
    try:
        assert "flat" in list_energy_models()
        estimate = estimate_energy(conv_plan("spatial", 2), Cluster((P, P)), model="flat")
        assert isinstance(estimate, EnergyEstimate)
        assert (estimate.model, estimate.model_version, estimate.total_j) == ("flat", "0.1", 2.0)
        with pytest.raises(ValueError, match="already registered"):
            register_energy_model(_Flat())
    finally:
        unregister_energy_model("flat")
    assert "flat" not in list_energy_models()


def test_a_model_object_can_be_passed_without_registering_it() -> None:
    estimate = estimate_energy(conv_plan("layer", 1), Cluster((P,)), model=_Flat())
    assert estimate.model == "flat"
    assert "flat" not in list_energy_models()


def test_something_that_is_no_energy_model_is_refused() -> None:
    with pytest.raises(EnergyError, match="model must be an energy model's name or an object"):
        estimate_energy(conv_plan("layer", 1), Cluster((P,)), model=42)  # type: ignore[arg-type]
