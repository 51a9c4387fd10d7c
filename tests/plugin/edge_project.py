"""The small project most pytester tests of the plugin run: tinycnn on two devices, two
strategies, one test function."""

from __future__ import annotations

import pytest

INI = "[pytest]\nedge_models = tinycnn\nedge_devices = 2\nedge_strategies = layer,spatial\n"
CASE_TEST = "def test_case(edge_run):\n    edge_run()\n"
LAYER = "tinycnn|layer|2xrpi4|1x3x32x32|board"
SPATIAL = "tinycnn|spatial|2xrpi4|1x3x32x32|board"


def make_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """Write the project (its ini file and its test file) into ``pytester``'s folder."""
    pytester.makeini(INI)
    pytester.makepyfile(test_case=CASE_TEST)
    return pytester

# A strategy a user might write: everything on device 0 but the last layer on device 1.
HAND_OFF = """
from pytest_edgeenergy.strategies import BuilderStrategy


class HandOff(BuilderStrategy):
    name = "hand-off"

    def assign(self, b, graph):
        for i, layer in enumerate(graph.layers):
            b.compute(1 if i == len(graph.layers) - 1 and b.n > 1 else 0, layer)
"""

# A strategy that fails on a rank other than 0: output-channel's plan, with one of device 1's
# tasks naming a layer the model does not have (self-contained: it imports what it uses).
BROKEN = """
import dataclasses

from pytest_edgeenergy.plan import Task
from pytest_edgeenergy.strategies.registry import get_strategy


class Broken:
    name = "broken"
    params = {}

    def plan(self, graph, cluster):
        plan = get_strategy("output-channel").plan(graph, cluster)
        i, task = next((i, s) for i, s in enumerate(plan.steps)
                       if isinstance(s, Task) and s.device == 1 and s.weight is None)
        plan.steps[i] = dataclasses.replace(task, layer="no_such_layer")
        return plan
"""
