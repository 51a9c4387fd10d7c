"""The small project most pytester tests of the plugin run: tinycnn on two devices, two
strategies, one test function."""

INI = "[pytest]\nedge_models = tinycnn\nedge_devices = 2\nedge_strategies = layer,spatial\n"
CASE_TEST = "def test_case(edge_run):\n    edge_run()\n"
LAYER = "tinycnn|layer|2xrpi4|1x3x32x32|board"
SPATIAL = "tinycnn|spatial|2xrpi4|1x3x32x32|board"

# A strategy a user might write: everything on device 0 but the last layer on device 1.
HAND_OFF = """
from pytest_edgeenergy.strategies import BuilderStrategy


class HandOff(BuilderStrategy):
    name = "hand-off"

    def assign(self, b, graph):
        for i, layer in enumerate(graph.layers):
            b.compute(1 if i == len(graph.layers) - 1 and b.n > 1 else 0, layer)
"""
