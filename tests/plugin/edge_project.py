"""The small project most pytester tests of the plugin run: tinycnn on two devices, two
strategies, one test function."""

INI = "[pytest]\nedge_models = tinycnn\nedge_devices = 2\nedge_strategies = layer,spatial\n"
CASE_TEST = "def test_case(edge_run):\n    edge_run()\n"
LAYER = "tinycnn|layer|2xrpi4|1x3x32x32|board"
SPATIAL = "tinycnn|spatial|2xrpi4|1x3x32x32|board"
