"""A pytest-xdist worker that crashes keeps the records of the tests it finished
(issue 9, item 6). Runs pytest in a subprocess, as xdist needs."""

from __future__ import annotations

import json

import pytest

from pytest_edgeenergy.plugin.testing import run_subprocess

pytest_plugins = ["pytester"]

INI = "[pytest]\nedge_models = tinycnn\nedge_strategies = layer,spatial\nedge_devices = 2\n"
# One worker runs both tests in order: the first records two cases, then the second kills
# the worker process.
TESTS = """
import os

def test_a_first(edge_run):
    edge_run()

def test_b_crash(edge_strategy):
    if edge_strategy.name == "layer":
        os._exit(3)
"""


@pytest.mark.heavy  # a pytest subprocess whose xdist worker dies and is restarted
def test_the_cases_a_crashed_worker_finished_reach_the_report_and_the_baseline(
        pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_crash=TESTS)
    result = run_subprocess(pytester, "-p", "no:randomly", "-n", "1", "--edge-report=r.json",
                            "--edge-baseline=b.json", "--edge-update-baseline")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*crashed*"])
    report = json.loads((pytester.path / "r.json").read_text())
    rows = [row for group in report["groups"] for row in group["rows"]]
    assert sorted((row["strategy"], row["status"]) for row in rows) == [
        ("layer", "passed"), ("spatial", "passed")]
    baseline = json.loads((pytester.path / "b.json").read_text())
    assert sorted(baseline["cases"]) == ["tinycnn|layer|2xrpi4|1x3x32x32|board",
                                         "tinycnn|spatial|2xrpi4|1x3x32x32|board"]
