"""``--edge-models`` takes ``.onnx`` paths, and the ``edge_model`` fixture gives their model."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from pytest_edgeenergy import build_model
from pytest_edgeenergy.plugin.testing import plugin_args, warm_up

pytest_plugins = ["pytester"]
warm_up()
onnx = pytest.importorskip("onnx")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in-process with the plugin."""
    return pytester.runpytest(*plugin_args(), "-p", "no:cacheprovider", *args)


def _export_tinycnn(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(build_model("tinycnn"), (torch.randn(1, 3, 32, 32),), str(path),
                          dynamo=False)


def test_an_onnx_path_in_edge_models_is_partitioned_and_checked(
        pytester: pytest.Pytester) -> None:
    _export_tinycnn(pytester.path / "tiny.onnx")
    pytester.makepyfile(test_onnx_case="""
        import torch

        def test_case(edge_model, edge_run):
            assert edge_model.input_shape == (1, 3, 32, 32)
            result = edge_run()
            torch.testing.assert_close(result.output, result.reference, rtol=1e-4, atol=1e-5)
            assert result.trace.device_stats() == result.plan.device_stats()
    """)
    result = run(pytester, "-v", "--edge-models=tiny.onnx", "--edge-strategies=layer,spatial",
                 "--edge-devices=2")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_case?tiny.onnx-layer-2xrpi4? PASSED*"])


def test_a_missing_onnx_file_is_a_usage_error_naming_the_option(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_onnx_case="def test_case(edge_run):\n    pass\n")
    result = run(pytester, "--edge-models=missing.onnx")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edge-models (from the command line) names the ONNX model "
                                 "'missing.onnx': ONNX model *missing.onnx does not exist*"])
