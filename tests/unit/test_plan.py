"""A plan is plain data: printable, comparable, serialisable, and runnable after a round trip."""

from __future__ import annotations

import json

import pytest
import torch

from pytest_edgeenergy import Plan, build_model, partition
from pytest_edgeenergy.backends.local import run_local


@pytest.mark.parametrize("strategy", ["layer", "spatial", "output-channel", "input-channel"])
def test_a_plan_survives_a_json_round_trip_and_still_runs(strategy: str) -> None:
    model = build_model("tinycnn")
    pm = partition(model, strategy, 3, (1, 3, 32, 32))
    text = pm.plan.to_json()
    again = Plan.from_json(text)
    assert again == pm.plan
    assert json.loads(text)["format"] == "pytest-edgeenergy-plan/1"
    x = torch.randn(1, 3, 32, 32)
    out, trace = run_local(again, pm.graph, x)
    with torch.no_grad():
        torch.testing.assert_close(out, model(x), rtol=1e-4, atol=1e-5)
    assert trace.device_stats() == again.device_stats()


def test_plans_of_different_strategies_differ() -> None:
    model = build_model("tinycnn")
    a = partition(model, "spatial", 2, (1, 3, 32, 32)).plan
    b = partition(model, "layer", 2, (1, 3, 32, 32)).plan
    assert a != b


def test_the_summary_names_every_device_and_every_layer() -> None:
    pm = partition(build_model("tinycnn"), "output-channel", 3, (1, 3, 32, 32))
    text = str(pm.plan)
    for d in range(3):
        assert f"device {d}" in text
    for layer in pm.graph.layers:
        assert f"{layer.name}: " in text
    assert "output channels split" in text


def test_a_foreign_json_is_refused_with_its_format() -> None:
    with pytest.raises(ValueError, match=r"not a pytest-edgeenergy plan \(format='x'\)"):
        Plan.from_json('{"format": "x"}')


def test_device_stats_count_what_the_steps_say() -> None:
    pm = partition(build_model("tinycnn"), "input-channel", 4, (1, 3, 32, 32))
    stats = pm.plan.device_stats()
    assert sum(s.bytes_sent for s in stats) == sum(s.bytes_received for s in stats)
    assert sum(s.bytes_sent for s in stats) == pm.plan.comm_bytes
    assert sum(s.messages for s in stats) == len(pm.plan.transfers)
    assert sum(s.macs for s in stats) == pm.plan.total_macs == pm.plan.graph_macs
