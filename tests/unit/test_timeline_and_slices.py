"""Measured timelines (busy, communication, makespan), the rates derived from a saved trace,
and the weight slices a rank on another host holds: only its own, byte for byte its plan's."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from pytest_edgeenergy import ProfileError, build_model, model_input_shape, partition
from pytest_edgeenergy.backends.slices import HeldSlices, check_held, held_bytes, slice_graph
from pytest_edgeenergy.calibrate_trace import derive_rates, load_trace, run_from_trace
from pytest_edgeenergy.errors import PartitionError
from pytest_edgeenergy.timeline import measure
from pytest_edgeenergy.trace import Event, Trace

STRATEGIES = ["layer", "spatial", "output-channel", "input-channel"]


def two_device_trace() -> Trace:
    """Device 0 computes, sends 1000 B and 3000 B to device 1, which computes; by hand."""
    trace = Trace(n_devices=2, backend="gloo", wall_s=1.0)
    trace.timeline = [
        Event(0, "task", 0, 0.0, 0.2, macs=2_000_000),
        Event(0, "send", 1, 0.2, 0.3, bytes=1000, peer=1),
        Event(1, "recv", 1, 0.0, 0.3, bytes=1000, peer=0),  # posted at 0, both ready at 0.2
        Event(1, "task", 2, 0.3, 0.7, macs=2_000_000),
        Event(1, "send", 3, 0.7, 0.9, bytes=3000, peer=0),
        Event(0, "recv", 3, 0.5, 1.0, bytes=3000, peer=1),  # both ready at 0.7
    ]
    return trace


def test_busy_and_communication_times_follow_the_events() -> None:
    m = measure(two_device_trace())
    assert m.makespan_s == 1.0
    assert m.busy_s == pytest.approx((0.2, 0.4))
    # transfers: 0.3 - 0.2 = 0.1 s and 1.0 - 0.7 = 0.3 s, each counted on both ends
    assert m.comm_s == pytest.approx((0.4, 0.4))


def test_rates_are_derived_from_a_saved_trace(tmp_path: Path) -> None:
    path = tmp_path / "run.trace.json"
    path.write_text(two_device_trace().to_json())
    rates = derive_rates(load_trace(path))
    assert rates[0].macs_per_s == pytest.approx(2_000_000 / 0.2)
    assert rates[1].macs_per_s == pytest.approx(2_000_000 / 0.4)
    # a line through (1000 B, 0.1 s) and (3000 B, 0.3 s): 10,000 B/s and no latency
    assert rates[0].net_bytes_per_s == pytest.approx(10_000)
    assert rates[0].net_latency_s == pytest.approx(0.0, abs=1e-12)
    out = io.StringIO()
    assert run_from_trace(path, out) == 0
    assert "macs_per_s = 1e+07  # measured: 2,000,000 MACs in 1 tasks" in out.getvalue()
    assert "net_bytes_per_s = 10000  # measured: least-squares fit of 2 transfers" in out.getvalue()


def test_a_trace_survives_its_json_form() -> None:
    trace = two_device_trace()
    trace.macs = [5, 6]
    again = Trace.from_json(trace.to_json())
    assert again.timeline == trace.timeline
    assert again.device_stats() == trace.device_stats()
    assert again.wall_s == trace.wall_s


def test_a_file_that_is_no_trace_is_named(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text('{"format": "pytest-edgeenergy-plan/1"}')
    with pytest.raises(ProfileError, match=r"plan.json is not a saved pytest-edgeenergy trace"):
        load_trace(path)
    local = Trace(n_devices=1)
    with pytest.raises(ProfileError, match=r"the trace has no timeline \(backend 'local'\)"):
        derive_rates(local)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_rank_holds_exactly_its_planned_weight_slices(strategy: str) -> None:
    model = build_model("tinycnn")
    shape = model_input_shape("tinycnn")
    pm = partition(model, strategy, 3, shape)
    total = 0
    for device in range(3):
        sliced = slice_graph(pm.graph, pm.plan, device)
        assert check_held(sliced, pm.plan, device) == pm.plan.device_stats()[device].weight_bytes
        total += held_bytes(sliced)
    assert total == sum(s.weight_bytes for s in pm.plan.device_stats())
    assert held_bytes(pm.graph) == pm.plan.graph_weight_bytes  # the full graph holds it all


def test_a_rank_reads_its_slices_as_the_full_tensor_and_nothing_else() -> None:
    full = torch.arange(4 * 6, dtype=torch.float32).reshape(4, 6)
    held = HeldSlices("conv.weight", (4, 6), [((1, 2), full[1:3, 2:5].clone())])
    assert torch.equal(held[1:3, 2:5], full[1:3, 2:5])
    assert torch.equal(held[2:3, 3:4], full[2:3, 3:4])
    assert held.nbytes == 2 * 3 * 4
    with pytest.raises(PartitionError, match=r"conv.weight: this rank does not hold "
                                             r"\[\(0, 2\), \(2, 5\)\]"):
        held[0:2, 2:5]
