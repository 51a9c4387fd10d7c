"""The example strategy's own tests: exact, compared with the classic four, and cheaper where
the pairing should make it cheaper."""

from __future__ import annotations

import pytest
from megatron import MegatronStrategy

from pytest_edgeenergy.cluster import Cluster
from pytest_edgeenergy.partitioned import partition
from pytest_edgeenergy.plugin import EdgeRunner
from pytest_edgeenergy.zoo import build_model, model_input_shape


@pytest.mark.parametrize("edge_model", ["tinycnn", "mobilenet_v2"], indirect=True)
def test_megatron_and_the_classic_strategies_are_exact(edge_run: EdgeRunner) -> None:
    """Each registered strategy, megatron included (conftest.py adds it), matches the model."""
    result = edge_run()
    assert result.case.ok
    assert result.energy.max_device_j == max(d.total_j for d in result.energy.devices)


@pytest.mark.parametrize("edge_strategy", [MegatronStrategy()], indirect=True)
@pytest.mark.parametrize("edge_model", ["tinycnn"], indirect=True)
def test_megatron_given_as_an_object_runs_exactly(edge_run: EdgeRunner) -> None:
    """An instance parametrised indirectly runs without any registration."""
    output, _trace, energy = edge_run()
    assert output.shape == (1, 10)
    assert energy.strategy == "megatron"


def test_a_closing_layer_reads_only_its_own_slices() -> None:
    """The second layer of a pair needs no transfer: its partial sums read local slices."""
    model = build_model("tinycnn")
    plan = partition(model, MegatronStrategy(), Cluster.homogeneous("rpi4", 4),
                     model_input_shape("tinycnn")).plan
    closing = [layer for layer, note in plan.notes.items() if note.startswith("pair closes")]
    assert closing
    for task in plan.tasks:
        if task.kind == "partial":
            assert all(plan.pieces[p].step == -1 or plan.pieces[p].device == task.device
                       for reads in task.reads for p in reads)
            made_by = {plan.steps[plan.pieces[p].step].__class__.__name__
                       for reads in task.reads for p in reads if plan.pieces[p].step >= 0}
            assert made_by <= {"Task"}, f"{task.layer} on device {task.device} read a transfer"


def test_megatron_sends_less_than_output_channel_on_mobilenet_v2() -> None:
    """Inverted bottlenecks reduce their narrow output instead of gathering the wide one."""
    model = build_model("mobilenet_v2")
    shape = model_input_shape("mobilenet_v2")
    cluster = Cluster.homogeneous("rpi4", 4)
    megatron = partition(model, MegatronStrategy(), cluster, shape).plan.comm_bytes
    output_channel = partition(model, "output-channel", cluster, shape).plan.comm_bytes
    assert megatron < 0.5 * output_channel
