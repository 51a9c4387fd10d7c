"""CI outputs: github-action-benchmark's JSON, the GitHub job summary, JUnit XML properties,
and the baseline comparison in the Markdown and JSON reports."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import pytest
from edge_project import INI, LAYER, make_project

from pytest_edgeenergy.plugin.testing import run, warm_up, write_profile_variant
from pytest_edgeenergy.records.baseline import DEFAULT_BASELINE
from pytest_edgeenergy.records.ci import STEP_SUMMARY_ENV

pytest_plugins = ["pytester"]
warm_up()


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """Two cases with a recorded baseline."""
    make_project(pytester)
    run(pytester, "--edge-update-baseline").assert_outcomes(passed=2)
    return pytester


def test_the_benchmark_json_has_github_action_benchmarks_fields_and_the_figures(
        project: pytest.Pytester) -> None:
    """customSmallerIsBetter: a list of objects with name (unique), unit and value, and the
    optional range and extra as strings; nothing else. Values equal the JSON report's."""
    result = run(project, "--edge-benchmark-json=out/bench.json", "--edge-report=r.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["edge benchmark JSON written to */out/bench.json"])
    data = json.loads((project.path / "out" / "bench.json").read_text())
    assert isinstance(data, list) and len(data) == 2 * 4
    report = {c["key"]: c["energy"] for c in json.loads(
        (project.path / "r.json").read_text())["cases"]}
    names = set()
    for entry in data:
        assert isinstance(entry, dict)
        assert {"name", "unit", "value"} <= set(entry) <= {"name", "unit", "value", "range",
                                                            "extra"}
        assert isinstance(entry["name"], str) and entry["name"] not in names
        names.add(entry["name"])
        assert entry["unit"] in ("J", "s", "bytes")
        value = entry["value"]
        assert isinstance(value, int | float) and not isinstance(value, bool)
        assert math.isfinite(value) and value >= 0
        assert isinstance(entry.get("range", ""), str)
        assert isinstance(entry["extra"], str)
        key, metric = entry["name"].rsplit(" ", 1)
        assert value == report[key][metric]
        assert {"max_device_j": "J", "total_j": "J", "makespan_s": "s",
                "comm_bytes": "bytes"}[metric] == entry["unit"]
    layer = next(e for e in data if e["name"] == f"{LAYER} max_device_j")
    assert layer["extra"].startswith("per device: 0 (rpi4) 0.00166")
    assert "energy model: board v1" in layer["extra"]


def test_the_markdown_report_is_appended_to_the_github_job_summary(
        project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """What earlier steps wrote stays; the report and the baseline comparison follow."""
    summary = project.path / "step-summary.md"
    summary.write_text("## Build\n\nok\n")
    monkeypatch.setenv(STEP_SUMMARY_ENV, str(summary))
    write_profile_variant(project.path / "dev", active_w=1.1)
    run(project, "--edge-device-dir=dev").assert_outcomes(failed=2)
    text = summary.read_text()
    assert text.startswith("## Build\n\nok\n# Edge energy report\n")
    assert "## tinycnn on 2xrpi4 (input 1x3x32x32, energy model board)" in text
    assert "## Baseline comparison" in text
    escaped = LAYER.replace("|", "\\|")  # a "|" splits a GitHub table cell, even in code
    assert (f"| REGRESSED | `{escaped}` | device_j grew past 0.1% on devices 0 (rpi4), 1 (rpi4) "
            "(most: 0.001661 J -> 0.001701 J, +2.38%); device profile rpi4 changed") in text
    run(project, "--edge-device-dir=dev").assert_outcomes(failed=2)
    assert summary.read_text().count("# Edge energy report") == 2  # appended, not replaced


def test_junit_xml_carries_each_cases_energy_as_properties(project: pytest.Pytester) -> None:
    """Per test case: the case key, figures, each device's joules and the baseline verdict,
    without record_property's warning under the default junit_family."""
    result = run(project, "--junitxml=junit.xml", "--edge-report=r.json")
    result.assert_outcomes(passed=2)
    assert "record_property is incompatible" not in result.stdout.str()
    report = {c["key"]: c["energy"] for c in json.loads(
        (project.path / "r.json").read_text())["cases"]}
    cases = ET.parse(project.path / "junit.xml").getroot().iter("testcase")
    seen = []
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        key = props["edge_case"]
        assert key is not None
        seen.append(key)
        energy = report[key]
        assert float(props["edge_max_device_j"] or "nan") == energy["max_device_j"]
        assert float(props["edge_total_j"] or "nan") == energy["total_j"]
        assert int(props["edge_comm_bytes"] or "-1") == energy["comm_bytes"]
        for device in energy["devices"]:
            assert float(props[f"edge_device{device['index']}_j"] or "nan") == device["total_j"]
        assert props["edge_status"] == "passed"
        assert props["edge_baseline"] == "unchanged"
    assert sorted(seen) == sorted(report)


def test_the_json_report_holds_the_baseline_verdicts(project: pytest.Pytester) -> None:
    """The comparison's summary per case, for tools that read the JSON report."""
    project.makeconftest("""
        from pytest_edgeenergy.strategies import BuilderStrategy

        class AllOnZero(BuilderStrategy):
            name = "all-on-zero"

            def assign(self, b, graph):
                for layer in graph.layers:
                    b.compute(0, layer)

        def pytest_edgeenergy_add_strategies(config):
            return [AllOnZero]
    """)
    project.makeini(INI.replace("layer,spatial", "layer,spatial,all-on-zero"))
    run(project, "--edge-report=r.json").assert_outcomes(passed=3)
    baseline = json.loads((project.path / "r.json").read_text())["baseline"]
    assert baseline["path"] == DEFAULT_BASELINE and baseline["exists"]
    assert {c["key"].split("|")[1]: c["status"] for c in baseline["cases"]} == {
        "layer": "unchanged", "spatial": "unchanged", "all-on-zero": "new"}
