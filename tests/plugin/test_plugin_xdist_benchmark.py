"""Under pytest-xdist the report prints once with the same numbers (pytest in a subprocess, as
xdist needs; heavy); energy lands in pytest-benchmark's saved JSON (in-process)."""

from __future__ import annotations

import json
import re

import pytest

from pytest_edgeenergy.plugin.testing import run, run_subprocess

pytest_plugins = ["pytester"]

INI = "[pytest]\nedge_models = tinycnn,yolov2_tiny\nedge_devices = 2,3\n"
CASE_TEST = """
def test_case(edge_run):
    edge_run()

def test_again(edge_run):
    edge_run()
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project of 40 cases (2 models x 5 strategies, search included, x 2 clusters x 2 tests)."""
    pytester.makeini(INI)
    pytester.makepyfile(test_case=CASE_TEST)
    return pytester


def _untimed(text: str) -> str:
    """``text`` without the search's own planning time, the one figure two runs never share."""
    return re.sub(r"in \d+\.\d+ s wall, \d+\.\d+ s CPU", "in <time>", text)


def _section(text: str) -> str:
    """The report's tables: from the section's header line to the ranking legend."""
    start = text.index("= edge energy =")
    return _untimed(text[text.index("\n", start):text.index("rank: strategies", start)].strip())


@pytest.mark.heavy  # two pytest subprocesses, one with two xdist workers
def test_under_xdist_the_report_prints_once_with_the_same_numbers(
        project: pytest.Pytester) -> None:
    """Workers hand their cases to the controller; only it prints, and the tables match."""
    plain = run_subprocess(project, "--edge-report=plain.json", "-p", "no:xdist")
    plain.assert_outcomes(passed=40)
    spread = run_subprocess(project, "-n", "2", "--edge-report=spread.json")
    spread.assert_outcomes(passed=40)
    out = spread.stdout.str()
    assert out.count("= edge energy =") == 1
    assert out.count("tinycnn on 2xrpi4 (input 1x3x32x32, energy model board)") == 1
    assert _section(out) == _section(plain.stdout.str())
    assert "yolov2_tiny on 3xrpi4" in _section(out)
    plain_json = json.loads(_untimed((project.path / "plain.json").read_text()))
    spread_json = json.loads(_untimed((project.path / "spread.json").read_text()))
    assert plain_json == spread_json
    assert len(spread_json["cases"]) == 20  # two tests per case, one row per case


def test_energy_figures_land_in_pytest_benchmarks_json(project: pytest.Pytester) -> None:
    """``--benchmark-json`` saves each case's energy in its ``extra_info``."""
    project.makepyfile(test_case="""
        def test_timed(edge_run, benchmark):
            edge_run(rounds=2)
    """)
    result = run(project, "--edge-models=tinycnn", "--edge-devices=2",
                 "--benchmark-json=bench.json", "--edge-report=edge.json")
    result.assert_outcomes(passed=5)  # the four classic strategies and search
    bench = json.loads((project.path / "bench.json").read_text())
    report = {c["key"]: c for c in json.loads((project.path / "edge.json").read_text())["cases"]}
    assert len(bench["benchmarks"]) == 5
    for entry in bench["benchmarks"]:
        extra = entry["extra_info"]["edgeenergy"]
        assert entry["stats"]["rounds"] == 2
        assert extra["energy"]["max_device_j"] == report[extra["key"]]["energy"]["max_device_j"]
        assert entry["param"] == f"tinycnn-{extra['strategy']}-2xrpi4"
