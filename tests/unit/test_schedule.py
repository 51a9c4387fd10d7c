"""Tests of the schedule simulation: hand-computed makespans and properties of any schedule.

The hand-computed cases use one 3x3 convolution (2 -> 4 channels, 4x4 input, padding 1) split
over two devices under each of the four strategies, on a made-up device whose figures are round
numbers (1 MMAC/s, 1 MB/s of memory, 100 kB/s of network, 1 ms latency), so every time below
can be checked with pencil and paper.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from energy_cases import MACS_S, MEM_S, STRATEGIES, P, conv_plan, link_s, make_profile, small_plan
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_edgeenergy.cluster import Cluster
from pytest_edgeenergy.energy import EnergyError, simulate
from pytest_edgeenergy.plan import Plan, Task, Transfer
from pytest_edgeenergy.profiles import DeviceProfile


def transfers_of(plan: Plan) -> list[tuple[int, int, int]]:
    """(src, dst, bytes) of each transfer, in plan order."""
    return [(t.src, t.dst, t.bytes) for t in plan.transfers]


# ---- hand-computed ------------------------------------------------------------------------

def test_a_single_convolution_on_one_device_takes_its_compute_time() -> None:
    plan = conv_plan("layer", 1)
    macs = 4 * 4 * 4 * (2 * 3 * 3)  # outputs x fan-in = 1152
    touched = 2 * 16 * 4 + 4 * 16 * 4 + (4 * 18 + 4) * 4  # in + out + weights and bias = 688
    [task] = plan.tasks
    assert (task.macs, task.bytes_touched) == (macs, touched)
    schedule = simulate(plan, Cluster((P,)))
    busy_s = max(macs / MACS_S, touched / MEM_S)  # 1.152 ms: compute-bound
    assert schedule.busy_s == pytest.approx((busy_s,), rel=1e-12)
    assert schedule.makespan_s == pytest.approx(busy_s, rel=1e-12)
    assert schedule.comm_s == (0.0,)


def test_a_memory_bound_task_takes_its_memory_time() -> None:
    slow_memory = make_profile(mem_bytes_per_s=1e5)
    schedule = simulate(conv_plan("layer", 1), Cluster((slow_memory,)))
    assert schedule.makespan_s == pytest.approx(688 / 1e5, rel=1e-12)


def test_layer_wise_keeps_a_single_layer_on_the_camera_device_by_hand() -> None:
    plan = conv_plan("layer", 2)
    # One layer cannot be cut: it stays with the image on device 0; nothing is sent.
    assert transfers_of(plan) == []
    task = plan.tasks[0].macs / MACS_S  # 1.152 ms
    schedule = simulate(plan, Cluster((P, P)))
    assert schedule.makespan_s == pytest.approx(task, rel=1e-12)
    assert schedule.busy_s == pytest.approx((task, 0.0), rel=1e-12)
    assert schedule.comm_s == (0.0, 0.0)


def test_spatial_scatters_a_band_with_its_halo_and_gathers_by_hand() -> None:
    plan = conv_plan("spatial", 2)
    # Device 1 computes rows 2:4, which need input rows 1:4 (a one-row halo): 2 x 3 x 4 floats.
    assert transfers_of(plan) == [(0, 1, 2 * 3 * 4 * 4), (1, 0, 4 * 2 * 4 * 4)]
    half = (4 * 2 * 4) * 18 / MACS_S  # 576 MACs: 0.576 ms (528 bytes touched: compute-bound)
    expected = link_s(96) + half + link_s(128)  # device 0's own half finishes long before
    schedule = simulate(plan, Cluster((P, P)))
    assert schedule.makespan_s == pytest.approx(expected, rel=1e-12)
    assert schedule.makespan_s == pytest.approx(4.816e-3, rel=1e-12)


def test_output_channel_sends_the_full_input_and_gathers_by_hand() -> None:
    plan = conv_plan("output-channel", 2)
    assert transfers_of(plan) == [(0, 1, 2 * 16 * 4), (1, 0, 2 * 16 * 4)]
    half = (2 * 16) * 18 / MACS_S  # 0.576 ms; 408 bytes touched
    expected = link_s(128) + half + link_s(128)
    schedule = simulate(plan, Cluster((P, P)))
    assert schedule.makespan_s == pytest.approx(expected, rel=1e-12)
    assert schedule.makespan_s == pytest.approx(5.136e-3, rel=1e-12)


def test_input_channel_reduces_partial_sums_on_device_0_by_hand() -> None:
    plan = conv_plan("input-channel", 2)
    # Device 1 gets input channel 1 (64 B) and returns a full partial sum (256 B).
    assert transfers_of(plan) == [(0, 1, 64), (1, 0, 256)]
    partial = (4 * 16) * 9 / MACS_S  # 576 MACs: 0.576 ms
    reduce_touched = 2 * 256 + 256 + 4 * 4  # two partials in, the output out, the bias
    reduce = reduce_touched / MEM_S  # no MACs: memory-bound, 0.784 ms
    assert [t.kind for t in plan.tasks] == ["partial", "partial", "reduce"]
    assert plan.tasks[-1].bytes_touched == reduce_touched
    expected = link_s(64) + partial + link_s(256) + reduce
    schedule = simulate(plan, Cluster((P, P)))
    assert schedule.makespan_s == pytest.approx(expected, rel=1e-12)
    assert schedule.makespan_s == pytest.approx(6.56e-3, rel=1e-12)
    assert schedule.busy_s[0] == pytest.approx(partial + reduce, rel=1e-12)


def test_a_devices_own_transfers_never_overlap_each_other() -> None:
    plan = conv_plan("output-channel", 3)
    # Device 0 sends the whole input to devices 1 and 2: the second send waits for the first.
    assert [(s, d) for s, d, _ in transfers_of(plan)[:2]] == [(0, 1), (0, 2)]
    schedule = simulate(plan, Cluster((P,) * 3))
    first, second = (t.step for t in plan.transfers[:2])
    assert schedule.step_start_s[second] == pytest.approx(schedule.step_end_s[first])
    assert schedule.step_start_s[first] == 0.0


def test_a_device_computes_while_its_network_interface_sends() -> None:
    plan = conv_plan("output-channel", 2)
    schedule = simulate(plan, Cluster((P, P)))
    task, send = plan.steps[0], plan.steps[1]
    assert isinstance(task, Task) and isinstance(send, Transfer)
    assert task.device == send.src == 0
    # Both start at time 0: compute and communication of one device overlap.
    assert schedule.step_start_s[task.step] == schedule.step_start_s[send.step] == 0.0


def test_a_transfer_runs_at_the_slower_devices_rate_and_the_larger_latency() -> None:
    fast = make_profile(net_bytes_per_s=1e7, net_latency_s=1e-4)
    plan = conv_plan("output-channel", 2)
    expected = link_s(128) + 576 / MACS_S + link_s(128)  # the slow device's figures
    assert simulate(plan, Cluster((fast, P))).makespan_s == pytest.approx(expected, rel=1e-12)
    assert simulate(plan, Cluster((P, fast))).makespan_s == pytest.approx(expected, rel=1e-12)


def test_a_cluster_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(EnergyError, match=r"for 2 device\(s\) but the cluster 3xpencil has 3"):
        simulate(conv_plan("spatial", 2), Cluster((P,) * 3))


def test_a_plan_that_reads_a_piece_before_it_exists_is_refused() -> None:
    plan = conv_plan("output-channel", 2)
    broken = dataclasses.replace(plan, steps=[plan.steps[0], plan.steps[2], plan.steps[1],
                                              plan.steps[3]])
    with pytest.raises(EnergyError, match="not a valid schedule: step 2 on device 1 needs piece"):
        simulate(broken, Cluster((P, P)))


# ---- properties ---------------------------------------------------------------------------

profiles = st.builds(
    make_profile,
    macs_per_s=st.floats(1e3, 1e9),
    mem_bytes_per_s=st.floats(1e3, 1e9),
    net_bytes_per_s=st.floats(1e3, 1e9),
    net_latency_s=st.floats(0.0, 1e-2),
)


@settings(max_examples=60, deadline=None)
@given(strategy=st.sampled_from(STRATEGIES), n=st.integers(1, 4), profile=profiles,
       speedup=st.floats(1.0, 1e3), latency_cut=st.floats(0.0, 1.0))
def test_a_faster_link_never_raises_the_makespan(strategy: str, n: int, profile: DeviceProfile,
                                                 speedup: float, latency_cut: float) -> None:
    plan = small_plan(strategy, n)
    faster = dataclasses.replace(profile, net_bytes_per_s=profile.net_bytes_per_s * speedup,
                                 net_latency_s=profile.net_latency_s * latency_cut)
    slow = simulate(plan, Cluster((profile,) * n))
    fast = simulate(plan, Cluster((faster,) * n))
    assert fast.makespan_s <= slow.makespan_s * (1 + 1e-12)
    assert fast.busy_s == slow.busy_s


@settings(max_examples=40, deadline=None)
@given(strategy=st.sampled_from(STRATEGIES), n=st.integers(1, 4),
       devices=st.lists(profiles, min_size=4, max_size=4))
def test_every_step_waits_for_its_inputs_and_for_its_resources(
        strategy: str, n: int, devices: list[DeviceProfile]) -> None:
    plan = small_plan(strategy, n)
    schedule = simulate(plan, Cluster(tuple(devices[:n])))
    start, end = schedule.step_start_s, schedule.step_end_s
    made_at = [0.0 if p.step == -1 else end[p.step] for p in plan.pieces]
    cpu: dict[int, list[tuple[float, float]]] = {d: [] for d in range(n)}
    nic: dict[int, list[tuple[float, float]]] = {d: [] for d in range(n)}
    for s in plan.steps:
        if isinstance(s, Task):
            assert all(start[s.step] >= made_at[p] for read in s.reads for p in read)
            cpu[s.device].append((start[s.step], end[s.step]))
        else:
            assert start[s.step] >= made_at[s.src_piece]
            nic[s.src].append((start[s.step], end[s.step]))
            nic[s.dst].append((start[s.step], end[s.step]))
    for intervals in [*cpu.values(), *nic.values()]:
        for (_, a_end), (b_start, _) in itertools.pairwise(intervals):
            assert b_start >= a_end  # no resource does two things at once
    busy = [sum(b - a for a, b in cpu[d]) for d in range(n)]
    comm = [sum(b - a for a, b in nic[d]) for d in range(n)]
    assert schedule.busy_s == pytest.approx(tuple(busy), rel=1e-9, abs=1e-15)
    assert schedule.comm_s == pytest.approx(tuple(comm), rel=1e-9, abs=1e-15)
    assert schedule.makespan_s == max(made_at[p] for p in plan.output_pieces)
    assert schedule.finish_s >= schedule.makespan_s
