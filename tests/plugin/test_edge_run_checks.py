"""``edge_run()``: non-finite outputs, bad tolerances, seeds and inputs, and the reference of
each model object (issue 9, items 2, 3 and 11)."""

from __future__ import annotations

import json

import pytest

from pytest_edgeenergy.plugin.testing import plugin_args, warm_up

pytest_plugins = ["pytester"]
warm_up()

INI = "[pytest]\nedge_models = tinycnn\nedge_strategies = layer\nedge_devices = 2\n"

# The reference gets an inf at element 0, and the partitioned output the same inf there but
# is wrong by 1000 everywhere else: only the equivalence check stands between it and a pass.
NON_FINITE_CONFTEST = """
import torch
from pytest_edgeenergy.plugin.fixtures import EdgeRunner

_reference, _run = EdgeRunner.reference, EdgeRunner._run

def reference(self, x):
    out = _reference(self, x).clone()
    out[0, 0] = float("inf")
    return out

def wrong(self, pm, x, rounds):
    out = _run(self, pm, x, rounds).clone() + 1000.0
    out[0, 0] = float("inf")
    return out

def pytest_configure(config):
    EdgeRunner.reference, EdgeRunner._run = reference, wrong

def pytest_unconfigure(config):
    EdgeRunner.reference, EdgeRunner._run = _reference, _run
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in-process with the plugin."""
    return pytester.runpytest(*plugin_args(), "-p", "no:cacheprovider", *args)


def _report(pytester: pytest.Pytester) -> dict[str, object]:
    data = json.loads((pytester.path / "r.json").read_text())
    assert isinstance(data, dict)
    return data


def test_an_infinite_reference_never_lets_a_wrong_output_pass(
        pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makeconftest(NON_FINITE_CONFTEST)
    pytester.makepyfile(test_inf="def test_case(edge_run):\n    edge_run()\n")
    result = run(pytester, "--edge-report=r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*partitioned output differs from the unpartitioned model "
                                 "beyond 1e-05 x max|reference| = *"])


@pytest.mark.parametrize("tolerance", ["-1e-5", "float('nan')", "'1e-5'"])
def test_a_bad_tolerance_fails_its_case_by_name_and_the_case_is_reported(
        pytester: pytest.Pytester, tolerance: str) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_tol=f"""
        def test_case(edge_run):
            edge_run(tolerance={tolerance})
    """)
    result = run(pytester, "--edge-report=r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*edge_run(tolerance=...) must be a finite number of 0 or "
                                 "more, got *"])
    assert "Traceback" not in result.stdout.str()
    failures = _report(pytester)["failures"]
    assert isinstance(failures, list) and [f["status"] for f in failures] == ["error"]


def test_a_nan_reference_is_compared_and_the_case_is_reported(
        pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makeconftest("""
        import torch
        from pytest_edgeenergy.plugin.fixtures import EdgeRunner

        _original = EdgeRunner.reference

        def pytest_configure(config):
            EdgeRunner.reference = lambda self, x: _original(self, x) * float("nan")

        def pytest_unconfigure(config):
            EdgeRunner.reference = _original
    """)
    pytester.makepyfile(test_nan="def test_case(edge_run):\n    edge_run()\n")
    result = run(pytester, "--edge-report=r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*differs from the unpartitioned model in its non-finite "
                                 "values (10 of 10 elements*"])
    failures = _report(pytester)["failures"]
    assert isinstance(failures, list) and [f["status"] for f in failures] == ["not-equivalent"]


def test_two_models_of_one_name_are_each_compared_with_their_own_output(
        pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_names="""
        import pytest
        from pytest_edgeenergy import build_model
        from pytest_edgeenergy.plugin.fixtures import EdgeModel

        MODELS = [EdgeModel("mine", build_model("tinycnn", seed=s), (1, 3, 32, 32))
                  for s in (0, 1)]

        @pytest.mark.parametrize("edge_model", MODELS, ids=["first", "second"])
        def test_case(edge_run):
            edge_run()
    """)
    run(pytester, "-p", "no:randomly").assert_outcomes(passed=2)


@pytest.mark.parametrize(("call", "message"), [
    ('seed="abc"', "edge_run(seed=...) must be an integer from 0 to 2**63 - 1, got 'abc'"),
    ("seed=-1", "edge_run(seed=...) must be an integer from 0 to 2**63 - 1, got -1"),
    ("input=make_input((1, 3, 32, 32)).double()",
     "edge_run(input=...) dtype torch.float64 is not supported; use torch.float32*"),
    ("input=[[1.0]]", "edge_run(input=...) must be a torch.Tensor of dtype float32, got list*"),
])
def test_bad_edge_run_arguments_fail_the_case_with_a_message_naming_them(
        pytester: pytest.Pytester, call: str, message: str) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_args=f"""
        from pytest_edgeenergy.plugin.fixtures import make_input

        def test_case(edge_run):
            edge_run({call})
    """)
    result = run(pytester, "--edge-report=r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*{message}*"])
    assert "Traceback" not in result.stdout.str()
