"""One case's infinite energy fails that case, never the session's report or baseline
(issue 9, item 8)."""

from __future__ import annotations

import json

import pytest

from pytest_edgeenergy.plugin.testing import plugin_args, warm_up

pytest_plugins = ["pytester"]
warm_up()

INI = "[pytest]\nedge_models = tinycnn\nedge_strategies = layer\n"

# A profile built in code (no file, so no plausibility check) whose link is so slow that
# every transfer takes forever: the energies are infinite.
TEST_FILE = """
import dataclasses
import pytest
from pytest_edgeenergy import Cluster, load_device

RPI4 = load_device("rpi4")
CRAWL = dataclasses.replace(RPI4, name="crawl", net_bytes_per_s=5e-324)

@pytest.mark.parametrize("edge_cluster", [Cluster((RPI4, RPI4)), Cluster((CRAWL, CRAWL))],
                         ids=["good", "crawl"], indirect=True)
def test_case(edge_run):
    edge_run()
"""


def test_an_infinite_energy_fails_its_case_and_the_report_and_baseline_are_written(
        pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_crawl=TEST_FILE)
    result = pytester.runpytest(*plugin_args(), "-p", "no:cacheprovider", "--edge-report=r.json",
                                "--edge-baseline=b.json", "--edge-update-baseline")
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*the energy estimate is not finite: *= inf*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    report = json.loads((pytester.path / "r.json").read_text())
    assert [f["status"] for f in report["failures"]] == ["error"]
    baseline = json.loads((pytester.path / "b.json").read_text())
    assert list(baseline["cases"]) == ["tinycnn|layer|2xrpi4|1x3x32x32|board"]
