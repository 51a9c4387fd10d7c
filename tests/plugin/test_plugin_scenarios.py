"""The scenario and sensitivity options: their ini twins, their bad values, the reports'
columns, and a baseline recorded under another scenario."""

from __future__ import annotations

import csv
import io
import json

import pytest

from pytest_edgeenergy.energy import DEFAULT_SCENARIO
from pytest_edgeenergy.plugin.testing import plugin_args, run_subprocess, warm_up
from pytest_edgeenergy.records.results import DEFAULT_SCENARIO_TEXT

pytest_plugins = ["pytester"]
warm_up()

CASE_TEST = """
def test_case(edge_run):
    edge_run()
"""
TINY = ("--edge-models=tinycnn", "--edge-devices=2", "--edge-strategies=layer,spatial")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in-process with the plugin, quietly, on the tiny model."""
    return pytester.runpytest(*plugin_args(), "-p", "no:cacheprovider", *TINY, *args)


@pytest.fixture
def case_file(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with one parametrised edge test."""
    pytester.makepyfile(test_case=CASE_TEST)
    return pytester


def test_the_records_default_scenario_is_the_energy_packages() -> None:
    assert str(DEFAULT_SCENARIO) == DEFAULT_SCENARIO_TEXT


def test_a_stream_scenario_is_in_the_header_the_titles_and_every_report(
        case_file: pytest.Pytester) -> None:
    scenario = "workload=stream,power=sleep,network=shared"
    result = run(case_file, f"--edge-scenario={scenario}", "--edge-device=rpi4-wifi",
                 "--edge-report=r.json", "--edge-report=r.csv")
    result.assert_outcomes(passed=2)
    canonical = "workload=stream,power=sleep,network=shared,relay=ap"
    result.stdout.fnmatch_lines([f"*energy model board; scenario {canonical}*",
                                 f"tinycnn on 2xrpi4-wifi (input 1x3x32x32, energy model board, "
                                 f"scenario {canonical})", "*period s*"])
    report = json.loads((case_file.path / "r.json").read_text())
    assert {c["scenario"] for c in report["cases"]} == {canonical}
    assert all(c["energy"]["period_s"] > 0 for c in report["cases"])
    rows = list(csv.DictReader(io.StringIO((case_file.path / "r.csv").read_text())))
    assert {r["scenario"] for r in rows} == {canonical}
    assert all(float(r["period_s"]) > 0 for r in rows)


def test_the_scenario_ini_key_is_the_options_twin(case_file: pytest.Pytester) -> None:
    case_file.makeini("[pytest]\nedge_scenario = network=full-duplex\n")
    result = run(case_file)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*scenario workload=single,power=always-on,"
                                 "network=full-duplex*"])


@pytest.mark.parametrize(("value", "message"), [
    ("workload=strem", "*--edge-scenario='workload=strem' (from the command line) is not a "
                       "valid scenario: *did you mean 'stream'*"),
    ("fps=30", "*fps=30 needs workload=stream*"),
    ("netwrk=shared", "*unknown scenario key 'netwrk'*did you mean 'network'*"),
])
def test_a_bad_scenario_is_a_usage_error_naming_it(case_file: pytest.Pytester, value: str,
                                                   message: str) -> None:
    result = run(case_file, f"--edge-scenario={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_sleep_on_a_device_without_power_state_figures_is_a_usage_error(
        case_file: pytest.Pytester) -> None:
    result = run(case_file, "--edge-scenario=power=sleep", "--edge-device=rpi3bplus")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edge-scenario=*cannot run on cluster 2xrpi3bplus*"
                                 "needs sleep_w, wake_s, wake_j*'rpi3bplus'*"])


def test_sensitivity_shows_margin_flip_and_shares_in_every_report(
        case_file: pytest.Pytester) -> None:
    result = run(case_file, "--edge-sensitivity", "--edge-sensitivity-samples=8",
                 "--edge-report=r.json", "--edge-report=r.csv", "--edge-report=r.md")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*sensitivity on (8 joint draws, seed 0)*",
                                 "*wins (joint draws)*",
                                 "robustness (max_device_j, 8 joint draws x0.5..x2, seed 0): "
                                 "* wins by *%*"])
    [group] = json.loads((case_file.path / "r.json").read_text())["groups"]
    r = group["robustness"]
    assert r["winner"] == group["best"] and r["samples"] == 8
    assert sum(r["shares"].values()) == pytest.approx(1.0)
    assert {f["field"] for f in r["flips"]} >= {"rpi4.macs_per_s", "rpi4.idle_w"}
    rows = list(csv.DictReader(io.StringIO((case_file.path / "r.csv").read_text())))
    assert sum(float(row["win_share"]) for row in rows) == pytest.approx(1.0)
    assert "robustness (max_device_j" in (case_file.path / "r.md").read_text()


def test_a_bad_sample_count_is_a_usage_error(case_file: pytest.Pytester) -> None:
    case_file.makeini("[pytest]\nedge_sensitivity_samples = many\n")
    result = run(case_file, "--edge-sensitivity")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*edge_sensitivity_samples='many' (from the ini file *) is not "
                                 "a sample count*"])


def test_a_baseline_of_another_scenario_is_not_compared_and_says_why(
        case_file: pytest.Pytester) -> None:
    recorded = run(case_file, "--edge-baseline=b.json", "--edge-update-baseline")
    recorded.assert_outcomes(passed=2)
    entries = json.loads((case_file.path / "b.json").read_text())["cases"]
    assert {e["scenario"] for e in entries.values()} == {DEFAULT_SCENARIO_TEXT}
    # A stream costs less per image than one image: compared, that would be an improvement;
    # with every threshold at 0 a rise would fail. Neither happens: the scenario differs.
    result = run(case_file, "--edge-baseline=b.json", "--edge-scenario=workload=stream",
                 "--edge-fail-on=max_device_j:0,total_j:0,makespan_s:0")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "*edge baseline b.json: 0 case(s) compared (2 other-scenario)*",
        "*scenario * recorded under scenario workload=single,power=always-on,"
        "network=half-duplex, this run uses workload=stream,power=always-on,"
        "network=half-duplex: not compared*"])
    assert result.ret == pytest.ExitCode.OK


@pytest.mark.heavy  # two subprocess runs, one of them with xdist workers: about a minute
def test_under_xdist_the_robustness_is_the_same_as_in_one_process(
        case_file: pytest.Pytester) -> None:
    """Workers analyse their own cases; the controller ranks them: the same figures."""
    args = (*TINY, "--edge-sensitivity",
            "--edge-sensitivity-samples=8")
    plain = run_subprocess(case_file, *args, "--edge-report=plain.json", "-p", "no:xdist")
    plain.assert_outcomes(passed=2)
    spread = run_subprocess(case_file, *args, "-n", "2", "--edge-report=spread.json")
    spread.assert_outcomes(passed=2)
    one = json.loads((case_file.path / "plain.json").read_text())["groups"]
    two = json.loads((case_file.path / "spread.json").read_text())["groups"]
    assert one[0]["robustness"] is not None
    assert [g["robustness"] for g in one] == [g["robustness"] for g in two]
