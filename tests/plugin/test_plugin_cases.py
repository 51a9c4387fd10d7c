"""Test ids, the ``edge`` marker, what ``edge_run()`` does and returns, and failed cases."""

from __future__ import annotations

import pytest

from pytest_edgeenergy.plugin.testing import run, warm_up

pytest_plugins = ["pytester"]
warm_up()

INI = "[pytest]\nedge_models = tinycnn\nedge_strategies = layer,spatial\n"

# Makes every reference output wrong by 1.0, so every case fails its equivalence check; the
# patch is undone when the nested session ends (nested runs share this process).
BROKEN_REFERENCE_CONFTEST = """
from pytest_edgeenergy.plugin.fixtures import EdgeRunner

_original = EdgeRunner.reference

def pytest_configure(config):
    EdgeRunner.reference = lambda self, x: _original(self, x) + 1.0

def pytest_unconfigure(config):
    EdgeRunner.reference = _original
"""


def test_ids_read_model_strategy_cluster(pytester: pytest.Pytester) -> None:
    """Ids are stable and readable: ``<model>-<strategy>-<cluster signature>``."""
    pytester.makeini(INI)
    pytester.makepyfile(test_ids="def test_case(edge_run):\n    pass\n")
    result = run(pytester, "--collect-only", "-q", "--edge-devices=2,8")
    assert sorted(line for line in result.outlines if "::" in line) == sorted(
        f"test_ids.py::test_case[tinycnn-{s}-{n}xrpi4]" for s in ("layer", "spatial")
        for n in (2, 8))


def test_only_the_fixtures_a_test_uses_are_parametrised(pytester: pytest.Pytester) -> None:
    """A test that asks for edge_strategy alone is parametrised by strategy alone."""
    pytester.makeini(INI)
    pytester.makepyfile(test_ids="""
        def test_strategy(edge_strategy):
            assert edge_strategy.name in ("layer", "spatial")

        def test_cluster(edge_cluster):
            assert edge_cluster.signature == "4xrpi4"

        def test_plain():
            pass
    """)
    result = run(pytester, "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*test_strategy?layer? PASSED*", "*test_strategy?spatial? PASSED*",
                                 "*test_cluster?4xrpi4? PASSED*", "*test_plain PASSED*"],
                                consecutive=False)


def test_minus_m_edge_selects_the_cases(pytester: pytest.Pytester) -> None:
    """Every case carries the registered ``edge`` marker; ``-m "not edge"`` leaves the rest."""
    pytester.makeini(INI)
    pytester.makepyfile(test_mark="""
        def test_case(edge_run):
            pass

        def test_other():
            pass
    """)
    run(pytester, "-m", "edge").assert_outcomes(passed=2, deselected=1)
    run(pytester, "-m", "not edge").assert_outcomes(passed=1, deselected=2)
    result = run(pytester, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.edge: a partitioned-inference case of "
                                 "pytest-edgeenergy (model x strategy x cluster)"])
    assert run(pytester, "--strict-markers", "-m", "edge").ret == 0


def test_edge_run_returns_output_trace_and_energy(pytester: pytest.Pytester) -> None:
    """The result unpacks as (output, trace, energy) and carries plan, reference and record."""
    pytester.makeini(INI)
    pytester.makepyfile(test_run="""
        import torch

        def test_case(edge_run, edge_cluster):
            result = edge_run()
            output, trace, energy = result
            assert output.shape == (1, 10)
            torch.testing.assert_close(output, result.reference, rtol=0, atol=1e-4)
            assert trace.device_stats() == result.plan.device_stats()
            assert len(energy.devices) == len(edge_cluster) == 4
            assert result.case.key == (
                f"tinycnn|{result.case.strategy}|4xrpi4|1x3x32x32|board")
            assert result.case.energy.max_device_j == energy.max_device_j
    """)
    run(pytester).assert_outcomes(passed=2)


def test_each_models_reference_runs_once_per_session(pytester: pytest.Pytester) -> None:
    """Four cases of one model (two strategies, two tests) run the unpartitioned model once."""
    pytester.makeini(INI)
    pytester.makepyfile(test_cache="""
        from pytest_edgeenergy.plugin.session import SESSION_KEY

        def test_a(edge_run):
            edge_run()

        def test_b(edge_run):
            edge_run()
            edge_run(seed=1)

        def test_zz_count(request):
            assert request.config.stash[SESSION_KEY].reference_runs == 2  # seeds 0 and 1
    """)
    run(pytester, "-p", "no:randomly").assert_outcomes(passed=5)


def test_a_non_equivalent_case_fails_and_is_listed(pytester: pytest.Pytester) -> None:
    """The test fails with the figures; the report lists it instead of ranking it."""
    pytester.makeini(INI)
    pytester.makeconftest(BROKEN_REFERENCE_CONFTEST)
    pytester.makepyfile(test_bad="def test_case(edge_run):\n    edge_run()\n")
    result = run(pytester, "--edge-report=r.json")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*tinycnn|layer|4xrpi4|1x3x32x32|board: partitioned output differs from the "
        "unpartitioned model beyond 1e-05 x max|reference| = *",
        "equivalence failures and errors:",
        "  test_bad.py::test_case[[]tinycnn-layer-4xrpi4[]]: not-equivalent: *"],
        consecutive=False)
    result.stdout.fnmatch_lines(["layer ?NOT-EQUIVALENT? *-*"])
    import json

    report = json.loads((pytester.path / "r.json").read_text())
    assert [f["status"] for f in report["failures"]] == ["not-equivalent"] * 2
    assert report["groups"][0]["best"] is None


def test_an_error_while_partitioning_is_recorded(pytester: pytest.Pytester) -> None:
    """A strategy that raises fails its test and shows as an error in the report."""
    pytester.makeini(INI)
    pytester.makepyfile(test_err="""
        import pytest
        from pytest_edgeenergy.strategies import BuilderStrategy

        class Broken(BuilderStrategy):
            name = "broken"

            def assign(self, b, graph):
                raise ValueError("no plan today")

        @pytest.mark.parametrize("edge_strategy", [Broken()], indirect=True)
        def test_case(edge_run):
            edge_run()
    """)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_err.py::test_case[[]broken-tinycnn-4xrpi4[]]: error: "
                                 "ValueError: no plan today"])


def test_a_caught_equivalence_failure_still_fails_the_run(pytester: pytest.Pytester) -> None:
    """The exit status is set in pytest_sessionfinish when a recorded case failed."""
    pytester.makeini(INI)
    pytester.makeconftest(BROKEN_REFERENCE_CONFTEST)
    pytester.makepyfile(test_hide="""
        import pytest

        def test_case(edge_run):
            with pytest.raises(pytest.fail.Exception):
                edge_run()
    """)
    result = run(pytester)
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
