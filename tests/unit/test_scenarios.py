"""Scenarios by hand: a stream through a two-device pipeline, sleeping devices, a shared medium
carrying three transfers, a per-kind throughput table, per-message energy; and properties that
hold in every scenario.

The device is ``energy_cases.P`` (1 MMAC/s, 1 MB/s of memory, 100 kB/s of network, 1 ms latency,
idle 1 W, active 3 W, 1 uJ per byte sent, 2 uJ per byte received) unless a test changes a figure,
so every number below can be checked with pencil and paper.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import pytest
import torch
from energy_cases import STRATEGIES, P, make_profile, small_plan
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pytest_edgeenergy import Scenario as TopLevelScenario
from pytest_edgeenergy.cluster import Cluster
from pytest_edgeenergy.energy import (
    DEFAULT_SCENARIO,
    EnergyError,
    Scenario,
    estimate_energy,
    parse_scenario,
    simulate,
)
from pytest_edgeenergy.graph.box import Box
from pytest_edgeenergy.graph.build import build_graph
from pytest_edgeenergy.plan import Piece, Plan, Transfer
from pytest_edgeenergy.profiles import DeviceProfile
from pytest_edgeenergy.strategies import get_strategy

MS = 1e-3


def two_convs() -> nn.Module:
    """conv 2->4 3x3 then conv 4->4 3x3 on a 4x4 image: 1152 and 2304 MACs."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)).eval()


@functools.cache
def pipeline_plan() -> Plan:
    """Layer-wise over two devices: conv 1 on device 0, conv 2 on device 1."""
    graph = build_graph(two_convs(), (1, 2, 4, 4))
    return get_strategy("layer").plan(graph, Cluster((P, P)))


def test_the_pipeline_case_is_what_the_hand_calculations_assume() -> None:
    plan = pipeline_plan()
    assert [(t.device, t.macs, t.bytes_touched) for t in plan.tasks] == [
        (0, 1152, 688), (1, 2304, 1104)]
    assert [(t.src, t.dst, t.bytes) for t in plan.transfers] == [(0, 1, 256), (1, 0, 256)]


# Steps of the pipeline on P: conv 1 1.152 ms (compute-bound: 688 B at 1 MB/s is 0.688 ms),
# transfer 1 ms + 256 B / 100 kB/s = 3.56 ms, conv 2 2.304 ms, transfer back 3.56 ms.
CONV1, LINK, CONV2 = 1.152 * MS, 3.56 * MS, 2.304 * MS
MAKESPAN = CONV1 + LINK + CONV2 + LINK  # 10.576 ms


def test_one_image_through_the_pipeline_takes_the_sum_of_its_steps() -> None:
    e = estimate_energy(pipeline_plan(), Cluster((P, P)))
    assert e.makespan_s == pytest.approx(MAKESPAN, rel=1e-12)
    assert e.period_s == e.makespan_s
    assert e.scenario == "workload=single,power=always-on,network=half-duplex"


def test_a_stream_through_a_two_device_pipeline_is_paced_by_its_busiest_interface() -> None:
    e = estimate_energy(pipeline_plan(), Cluster((P, P)), scenario="workload=stream")
    # Busy per image: processors 1.152 and 2.304 ms; each half-duplex interface carries both
    # transfers, 2 x 3.56 = 7.12 ms: the period.
    assert e.period_s == pytest.approx(2 * LINK, rel=1e-12)
    assert e.bottleneck == "device 0's network interface"
    assert e.makespan_s == pytest.approx(MAKESPAN, rel=1e-12)  # the latency of one image
    d0, d1 = e.devices
    comm_j = 1e-6 * 256 + 2e-6 * 256  # one transfer sent, one received, per device
    assert d0.compute_j == pytest.approx((3 - 1) * CONV1, rel=1e-12)
    assert d1.compute_j == pytest.approx((3 - 1) * CONV2, rel=1e-12)
    assert d0.comm_j == pytest.approx(comm_j, rel=1e-12)
    assert d0.static_j == d1.static_j == pytest.approx(1.0 * 2 * LINK, rel=1e-12)
    assert d0.total_j == pytest.approx(2 * CONV1 + comm_j + 2 * LINK, rel=1e-12)
    assert d1.total_j == pytest.approx(2 * CONV2 + comm_j + 2 * LINK, rel=1e-12)


def test_full_duplex_interfaces_let_the_pipeline_send_and_receive_at_once() -> None:
    e = estimate_energy(pipeline_plan(), Cluster((P, P)),
                        scenario="workload=stream,network=full-duplex")
    # Each interface sends one transfer and receives one: each side is busy 3.56 ms.
    assert e.period_s == pytest.approx(LINK, rel=1e-12)
    assert e.devices[0].static_j == pytest.approx(LINK, rel=1e-12)


def test_a_frame_rate_slower_than_the_pipeline_sets_the_period() -> None:
    e = estimate_energy(pipeline_plan(), Cluster((P, P)), scenario="workload=stream,fps=100")
    assert e.period_s == pytest.approx(10 * MS, rel=1e-12)
    assert e.bottleneck == "the frame rate"
    assert e.devices[1].static_j == pytest.approx(1.0 * 10 * MS, rel=1e-12)
    fast = estimate_energy(pipeline_plan(), Cluster((P, P)), scenario="workload=stream,fps=1000")
    assert fast.period_s == pytest.approx(2 * LINK, rel=1e-12)  # the pipeline cannot keep up


# ---- sleep and wake ---------------------------------------------------------------------

SLEEPY = dataclasses.replace(P, sleep_w=0.1, wake_s=1 * MS, wake_j=1 * MS)  # 1 mJ per wake


def test_sleeping_devices_pay_sleep_power_in_gaps_and_a_wake_up_each_time() -> None:
    e = estimate_energy(pipeline_plan(), Cluster((SLEEPY, SLEEPY)), scenario="power=sleep")
    # Device 0 is active [0, 4.712] ms (conv 1, sending) and [7.016, 10.576] ms (receiving);
    # its gap of 2.304 ms: asleep 1.304 ms at 0.1 W plus one 1 mJ wake-up, cheaper than
    # 2.304 mJ idling. The gap after its last activity and before its first one is 0.
    active0 = (CONV1 + LINK) + LINK
    assert e.devices[0].static_j == pytest.approx(
        1.0 * active0 + 0.1 * (CONV2 - 1 * MS) + 1 * MS, rel=1e-12)
    assert e.devices[0].wakes == 1
    assert e.devices[0].awake_s == pytest.approx(MAKESPAN - (CONV2 - 1 * MS), rel=1e-12)
    # Device 1 is active from 1.152 ms to the end; its gap (around the circle) is 1.152 ms:
    # asleep 0.152 ms + 1 mJ = 1.0152 mJ, cheaper than 1.152 mJ idling.
    assert e.devices[1].static_j == pytest.approx(
        1.0 * (MAKESPAN - CONV1) + 0.1 * (CONV1 - 1 * MS) + 1 * MS, rel=1e-12)
    # Compute and communication energy do not depend on the power states.
    on = estimate_energy(pipeline_plan(), Cluster((SLEEPY, SLEEPY)))
    for asleep, awake in zip(e.devices, on.devices, strict=True):
        assert (asleep.compute_j, asleep.comm_j) == (awake.compute_j, awake.comm_j)


def test_a_gap_shorter_than_the_wake_up_time_or_not_worth_a_wake_up_is_spent_idle() -> None:
    slow_wake = dataclasses.replace(SLEEPY, wake_s=3 * MS)  # longer than both gaps
    e = estimate_energy(pipeline_plan(), Cluster((slow_wake, slow_wake)), scenario="power=sleep")
    assert [d.static_j for d in e.devices] == pytest.approx([1.0 * MAKESPAN] * 2, rel=1e-12)
    assert [d.wakes for d in e.devices] == [0, 0]
    costly = dataclasses.replace(SLEEPY, wake_j=2.3 * MS)  # 0.1304 + 2.3 > 2.304 mJ of idling
    e = estimate_energy(pipeline_plan(), Cluster((costly, costly)), scenario="power=sleep")
    assert e.devices[0].static_j == pytest.approx(1.0 * MAKESPAN, rel=1e-12)


def test_a_device_with_nothing_to_do_sleeps_through_the_whole_image() -> None:
    one_conv = build_graph(nn.Sequential(nn.Conv2d(2, 4, 3, padding=1)).eval(), (1, 2, 4, 4))
    plan = get_strategy("layer").plan(one_conv, Cluster((P, P)))  # device 1 gets nothing
    e = estimate_energy(plan, Cluster((SLEEPY, SLEEPY)), scenario="power=sleep")
    assert e.makespan_s == pytest.approx(CONV1, rel=1e-12)
    assert e.devices[1].static_j == pytest.approx(0.1 * CONV1, rel=1e-12)
    assert e.devices[1].wakes == 0
    assert e.devices[0].static_j == pytest.approx(1.0 * CONV1, rel=1e-12)  # never idle


def test_in_a_stream_a_device_sleeps_between_its_turns() -> None:
    e = estimate_energy(pipeline_plan(), Cluster((SLEEPY, SLEEPY)),
                        scenario="workload=stream,fps=50,power=sleep")
    # Period 20 ms; device 1 is active 1.152 to 10.576 ms (9.424 ms), then sleeps 20 - 9.424
    # - 1 ms of wake-up at 0.1 W and pays one wake-up.
    active = MAKESPAN - CONV1
    assert e.devices[1].static_j == pytest.approx(
        1.0 * active + 0.1 * (20 * MS - active - 1 * MS) + 1 * MS, rel=1e-12)


def test_sleep_with_idle_power_and_free_wake_ups_is_always_on() -> None:
    same = dataclasses.replace(P, sleep_w=P.idle_w, wake_s=0.0, wake_j=0.0)
    for strategy in STRATEGIES:
        plan = small_plan(strategy, 3)
        asleep = estimate_energy(plan, Cluster((same,) * 3), scenario="power=sleep")
        on = estimate_energy(plan, Cluster((same,) * 3))
        assert [d.static_j for d in asleep.devices] == pytest.approx(
            [d.static_j for d in on.devices], rel=1e-9)


def test_sleep_without_the_power_state_figures_names_the_device_and_the_fields() -> None:
    with pytest.raises(EnergyError, match=r"power=sleep needs sleep_w, wake_s, wake_j .*"
                                          r"device 0, 'pencil'"):
        estimate_energy(pipeline_plan(), Cluster((P, P)), scenario="power=sleep")


# ---- a shared medium ----------------------------------------------------------------------

def three_transfers() -> Plan:
    """Device 0 sends 100 B to device 1, which forwards 200 B to device 2, while device 0
    sends 300 B more to device 1: on P, 2, 3 and 4 ms each on a switched link."""
    box = Box(((0, 1),))
    pieces = [Piece(0, 0, "x", box, 400, -1), Piece(1, 1, "x", box, 100, 0),
              Piece(2, 2, "x", box, 200, 1), Piece(3, 1, "x", box, 300, 2)]
    steps: list[Transfer] = [Transfer(0, 0, 1, 0, 1, box, 100), Transfer(1, 1, 2, 1, 2, box, 200),
                             Transfer(2, 0, 1, 0, 3, box, 300)]
    return Plan(strategy="by-hand", params={}, n_devices=3, speeds=(1.0,) * 3, input_name="x",
                input_shape=(1,), output="x", shapes={"x": (1,)}, layer_kinds={},
                graph_macs=0, graph_weight_bytes=0, pieces=pieces, steps=list(steps),
                frees=[(), (), ()], output_pieces=(0,))


@pytest.mark.parametrize(("network", "times_ms", "period_ms"), [
    # Switched, half-duplex: the forward 1->2 and the second send 0->1 both need device 1's
    # interface; the second waits until 5 ms.
    ("network=half-duplex", [(0, 2), (2, 5), (5, 9)], 9),
    # Full-duplex: device 1 receives while it sends.
    ("network=full-duplex", [(0, 2), (2, 5), (2, 6)], 6),
    # One medium, station to station: one transfer at a time.
    ("network=shared,relay=direct", [(0, 2), (2, 5), (5, 9)], 9),
    # Through the access point each transfer is sent twice: 4, 6 and 8 ms.
    ("network=shared,relay=ap", [(0, 4), (4, 10), (10, 18)], 18),
])
def test_three_transfers_on_each_kind_of_network_by_hand(network: str,
                                                         times_ms: list[tuple[int, int]],
                                                         period_ms: float) -> None:
    scenario = parse_scenario(f"workload=stream,{network}")
    schedule = simulate(three_transfers(), Cluster((P, P, P)), scenario)
    got = [t for pair in zip(schedule.step_start_s, schedule.step_end_s, strict=True)
           for t in pair]
    assert got == pytest.approx([t * MS for pair in times_ms for t in pair], rel=1e-12)
    assert schedule.period_s == pytest.approx(period_ms * MS, rel=1e-12)


def test_a_shared_medium_is_not_slowed_by_traffic_between_other_devices_on_a_switch() -> None:
    # On a switch, 1->2 and a transfer between two other devices would overlap; on a shared
    # medium nothing overlaps: the medium's period is the sum of all airtime.
    schedule = simulate(three_transfers(), Cluster((P, P, P)),
                        parse_scenario("workload=stream,network=shared,relay=direct"))
    assert schedule.bottleneck == "the shared medium"


def test_the_access_point_relay_uses_each_devices_own_rate() -> None:
    slow = make_profile(net_bytes_per_s=5e4, net_latency_s=2e-3)
    schedule = simulate(three_transfers(), Cluster((P, slow, P)),
                        parse_scenario("network=shared,relay=ap"))
    # 0->1: (1 ms + 100 B / 100 kB/s) + (2 ms + 100 B / 50 kB/s) = 2 + 4 = 6 ms.
    assert schedule.step_end_s[0] == pytest.approx(6 * MS, rel=1e-12)


def test_per_message_energy_is_paid_by_sender_and_receiver() -> None:
    chatty = dataclasses.replace(P, tx_j_per_message=5e-4, rx_j_per_message=3e-4)
    e = estimate_energy(three_transfers(), Cluster((chatty,) * 3))
    # Device 0 sends 2 messages (400 B), device 1 receives 2 (400 B) and sends 1 (200 B),
    # device 2 receives 1 (200 B).
    assert [d.comm_j for d in e.devices] == pytest.approx([
        1e-6 * 400 + 2 * 5e-4,
        2e-6 * 400 + 1e-6 * 200 + 2 * 3e-4 + 5e-4,
        2e-6 * 200 + 3e-4], rel=1e-12)


# ---- per-kind throughput --------------------------------------------------------------------

class FourKinds(nn.Module):
    """A dense 3x3 conv, a pointwise conv, a depthwise conv and a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.Conv2d(2, 4, 3, padding=1)
        self.point = nn.Conv2d(4, 4, 1)
        self.depth = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.fc = nn.Linear(64, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(torch.flatten(self.depth(self.point(self.dense(x))), 1))
        return out


def test_a_per_kind_table_sets_each_layers_rate_by_hand() -> None:
    torch.manual_seed(0)
    graph = build_graph(FourKinds().eval(), (1, 2, 4, 4))
    fast_memory = make_profile(mem_bytes_per_s=1e12)  # every task compute-bound
    table = dataclasses.replace(fast_memory, macs_per_s_by_kind=(
        ("conv", 2e6), ("pointwise", 4e6), ("depthwise", 5e5), ("linear", 1e5)))
    plan = get_strategy("layer").plan(graph, Cluster((table,)))
    macs = {t.layer: t.macs for t in plan.tasks if t.macs}
    # dense: 64 outputs x 18; pointwise: 64 x 4; depthwise: 64 x 9; linear: 5 x 64.
    assert sorted(macs.values()) == [256, 320, 576, 1152]
    flat_ms = sum(max(t.macs / 1e6, t.bytes_touched / 1e12) for t in plan.tasks) / MS
    flatten_ms = sum(t.bytes_touched / 1e12 for t in plan.tasks if not t.macs) / MS
    per_kind = simulate(plan, Cluster((table,)), Scenario(compute="per-kind"))
    assert per_kind.makespan_s / MS == pytest.approx(
        1152 / 2e6 / MS + 256 / 4e6 / MS + 576 / 5e5 / MS + 320 / 1e5 / MS + flatten_ms,
        rel=1e-12)
    # The table is ignored unless the scenario asks for it, and a kind it lacks uses macs_per_s.
    assert simulate(plan, Cluster((table,))).makespan_s / MS == pytest.approx(flat_ms, rel=1e-12)
    partial = dataclasses.replace(fast_memory, macs_per_s_by_kind=(("depthwise", 5e5),))
    mixed = simulate(plan, Cluster((partial,)), Scenario(compute="per-kind"))
    assert mixed.makespan_s / MS == pytest.approx(
        (1152 + 256 + 320) / 1e6 / MS + 576 / 5e5 / MS + flatten_ms, rel=1e-12)


# ---- the default scenario and the scenario's text -------------------------------------------

def test_the_default_scenario_is_todays_estimate_to_the_last_bit() -> None:
    for strategy, n in itertools.product(STRATEGIES, (1, 2, 3)):
        plan = small_plan(strategy, n)
        plain = estimate_energy(plan, Cluster((P,) * n))
        spelled = estimate_energy(plan, Cluster((P,) * n),
                                  scenario="workload=single,power=always-on,network=half-duplex")
        assert plain == spelled
        assert plain.period_s == plain.makespan_s


def test_scenario_is_importable_from_the_package_and_reads_back_its_text() -> None:
    assert TopLevelScenario is Scenario
    s = Scenario(workload="stream", fps=30, power="sleep", network="shared")
    assert str(s) == "workload=stream,fps=30,power=sleep,network=shared,relay=ap"
    assert parse_scenario(str(s)) == s
    assert parse_scenario("") == DEFAULT_SCENARIO
    assert DEFAULT_SCENARIO.is_default


@pytest.mark.parametrize(("text", "message"), [
    ("workload=strem", r"workload='strem' is not a choice \(did you mean 'stream'\?\)"),
    ("power=sleep,power=sleep", r"'power' given twice"),
    ("network", r"expected key=value pairs"),
    ("netwrk=shared", r"unknown scenario key 'netwrk' \(did you mean 'network'\?\)"),
    ("fps=30", r"fps=30 needs workload=stream"),
    ("workload=stream,fps=-1", r"fps must be a frame rate greater than 0"),
    ("workload=stream,fps=fast", r"fps must be a number"),
])
def test_a_bad_scenario_is_refused_with_what_was_wrong(text: str, message: str) -> None:
    with pytest.raises(EnergyError, match=message):
        parse_scenario(text, where="--edge-scenario")


# ---- properties in every scenario -----------------------------------------------------------

SCENARIOS = [Scenario(workload=w, fps=f, power=p, network=n, relay=r, compute=c)
             for (w, f), p, n, r, c in itertools.product(
                 (("single", None), ("stream", None), ("stream", 500.0)), ("always-on", "sleep"),
                 ("half-duplex", "full-duplex", "shared"), ("ap", "direct"),
                 ("uniform", "per-kind"))
             if n == "shared" or r == "ap"]
TABLE = dataclasses.replace(P, macs_per_s_by_kind=(("conv", 2e6), ("linear", 5e5)))


def _faster(profile: DeviceProfile, link: float, device: float) -> DeviceProfile:
    return dataclasses.replace(
        profile, net_bytes_per_s=profile.net_bytes_per_s * link,
        net_latency_s=profile.net_latency_s / link, macs_per_s=profile.macs_per_s * device,
        mem_bytes_per_s=profile.mem_bytes_per_s * device,
        macs_per_s_by_kind=tuple((k, r * device) for k, r in profile.macs_per_s_by_kind))


@settings(max_examples=60, deadline=None)
@given(strategy=st.sampled_from(STRATEGIES), n=st.integers(2, 4),
       scenario=st.sampled_from(SCENARIOS), which=st.integers(0, 3),
       link=st.floats(1.0, 100.0), device=st.floats(1.0, 100.0))
def test_a_faster_link_or_device_never_raises_the_makespan_or_the_period(
        strategy: str, n: int, scenario: Scenario, which: int, link: float,
        device: float) -> None:
    plan = small_plan(strategy, n)
    base = Cluster((TABLE,) * n)
    devices = list(base.devices)
    devices[which % n] = _faster(TABLE, link, device)  # one device, or its link, faster
    before = simulate(plan, base, scenario)
    after = simulate(plan, Cluster(tuple(devices)), scenario)
    assert after.makespan_s <= before.makespan_s * (1 + 1e-12)
    assert after.period_s <= before.period_s * (1 + 1e-12)
    everything = simulate(plan, Cluster((_faster(TABLE, link, device),) * n), scenario)
    assert everything.makespan_s <= before.makespan_s * (1 + 1e-12)
    assert everything.period_s <= before.period_s * (1 + 1e-12)


# Back to back and always on: a frame rate slower than the pipeline makes each image pay
# static power for longer than its own makespan, so the property holds only without one.
BACK_TO_BACK = [s for s in SCENARIOS if s.fps is None and s.power == "always-on"]


@settings(max_examples=40, deadline=None)
@given(strategy=st.sampled_from(STRATEGIES), n=st.integers(1, 4),
       scenario=st.sampled_from(BACK_TO_BACK))
def test_a_stream_back_to_back_never_costs_more_per_image_than_one_isolated_image(
        strategy: str, n: int, scenario: Scenario) -> None:
    plan = small_plan(strategy, n)
    single = dataclasses.replace(scenario, workload="single")
    stream = dataclasses.replace(scenario, workload="stream")
    one = estimate_energy(plan, Cluster((P,) * n), scenario=single)
    many = estimate_energy(plan, Cluster((P,) * n), scenario=stream)
    assert many.period_s <= one.makespan_s * (1 + 1e-12)
    assert many.max_device_j <= one.max_device_j * (1 + 1e-12)
