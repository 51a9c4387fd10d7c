"""--edge-meter and --edge-plot through pytest: the measured table, skips, pictures, errors."""

from __future__ import annotations

import csv
import io
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_edgeenergy.__main__ import main
from pytest_edgeenergy.plugin.testing import REPO_ROOT, plugin_args, run_subprocess, warm_up

pytest_plugins = ["pytester"]
warm_up()

INI = "[pytest]\nedge_models = tinycnn\nedge_devices = 2\nedge_strategies = layer,spatial\n"
CASE_TEST = "def test_case(edge_run):\n    edge_run()\n"

# A meter for tests: 0.1 W of idle power plus 5 mJ for each partitioned inference (it counts
# calls of PartitionedModel.forward), so the measured energy above idle is 5 mJ per inference
# whatever the machine's load. It stands in for a real meter; its numbers describe no hardware.
FAKE_METER_CONFTEST = '''
import time

from pytest_edgeenergy.meters import (
    BOARD, Availability, Reading, register_meter, unregister_meter)
from pytest_edgeenergy.partitioned import PartitionedModel

CALLS = [0]
_forward = PartitionedModel.forward


def counted_forward(self, x):
    CALLS[0] += 1
    return _forward(self, x)


PartitionedModel.forward = counted_forward


class CountingMeter:
    name = "counting-fake"

    def available(self):
        return Availability(True, "a fake meter for tests")

    def start(self):
        self._start = (time.perf_counter(), CALLS[0])

    def stop(self):
        wall0, calls0 = self._start
        wall, calls = time.perf_counter() - wall0, CALLS[0] - calls0
        return Reading(self.name, {BOARD: 0.1 * wall + 0.005 * calls}, wall,
                       "fake meter: 0.1 W + 5 mJ per inference")


register_meter("counting-fake", CountingMeter)


def pytest_unconfigure(config):  # the nested run shares this process: leave nothing behind
    PartitionedModel.forward = _forward
    unregister_meter("counting-fake")
'''


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*plugin_args(), "-p", "no:cacheprovider", *args)


@pytest.fixture
def metered(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makeconftest(FAKE_METER_CONFTEST)
    pytester.makepyfile(test_case=CASE_TEST)
    return pytester


def test_a_fake_meter_fills_the_measured_beside_estimated_table(
        metered: pytest.Pytester) -> None:
    result = run(metered, "--edge-meter=counting-fake", "--edge-report=r.md",
                 "--edge-report=r.json", "--edge-report=r.csv")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    print(out[out.index("measured beside estimated"):])  # what the report looks like
    lines = out.splitlines()
    start = lines.index("measured beside estimated (meter counting-fake)")
    assert lines[start + 1].split()[:4] == ["case", "measured", "on", "measured"]
    rows = [line.split() for line in lines[start + 3:start + 5]]
    assert [r[0] for r in rows] == ["tinycnn|layer|2xrpi4|1x3x32x32|board",
                                    "tinycnn|spatial|2xrpi4|1x3x32x32|board"]
    assert all(r[1:7] == ["devices", "0-1", "on", "this", "host", "(local"] for r in rows)
    assert "the whole machine is the one device measured" in out
    data = json.loads((metered.path / "r.json").read_text())
    assert data["measured"]["meter"] == {"spec": "counting-fake", "ok": True,
                                         "reason": "a fake meter for tests"}
    estimated = {c["key"]: sum(d["compute_j"] + d["comm_j"] for d in c["energy"]["devices"])
                 for c in data["cases"]}
    for row in data["measured"]["rows"]:
        assert row["estimated_j"] == pytest.approx(estimated[row["case"]])
        assert row["measured_j"] == pytest.approx(0.005, rel=0.02)  # idle subtracted
        assert row["ratio"] == pytest.approx(row["measured_j"] / row["estimated_j"])
        assert row["idle_w"] == pytest.approx(0.1)
        assert row["stable"] and row["windows"] >= 3
        assert "fake meter: 0.1 W + 5 mJ per inference" in row["how"]
    md = (metered.path / "r.md").read_text()
    assert "## measured beside estimated (meter counting-fake)" in md
    by_key = {r["case"]: r for r in data["measured"]["rows"]}
    for line in csv.DictReader(io.StringIO((metered.path / "r.csv").read_text())):
        row = by_key[line["key"]]
        assert float(line["measured_j"]) == row["measured_j"]
        assert float(line["measured_estimated_j"]) == row["estimated_j"]
        assert float(line["measured_ratio"]) == row["ratio"]
        assert line["measured_stable"] == "True"
    assert "| case " in md and "measured / estimated" in md


def test_an_unavailable_meter_is_reported_and_the_tests_that_need_it_skip(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_case=CASE_TEST + "\n\ndef test_needs_a_meter(edge_meter):\n"
                        "    assert False, 'never runs without a meter'\n")
    spec = f"rapl:root={tmp_path / 'no-powercap'}"
    result = run(pytester, f"--edge-meter={spec}", "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    out = result.stdout.str()
    reason = f"RAPL: no {tmp_path / 'no-powercap'} (the kernel has no powercap RAPL driver"
    assert f"meter '{spec}' unavailable: {reason}" in out  # the skip's reason
    assert f"meter {spec!r} unavailable: {reason}" in out and "nothing was measured" in out
    assert result.ret == 0


def test_without_a_meter_the_meter_fixture_skips_and_nothing_is_reported(
        pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_case="def test_needs_a_meter(edge_meter):\n    pass\n")
    result = run(pytester, "-rs")
    result.assert_outcomes(skipped=1)
    assert "no meter: run with --edge-meter=NAME" in result.stdout.str()
    assert "measured beside estimated" not in result.stdout.str()


def test_an_unknown_meter_is_a_usage_error_naming_the_option(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI + "edge_meter = rappl\n")
    pytester.makepyfile(test_case=CASE_TEST)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*edge_meter='rappl' (from the ini file *) is not a meter "
                                 "(unknown meter 'rappl' (did you mean 'rapl'?)*"])


def svg_ids(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return [el.get("id", "") for el in root.iter()]


def test_edge_plot_draws_a_folder_and_the_markdown_report_embeds_it(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makeini(INI.replace("edge_devices = 2", "edge_devices = 2,3"))
    pytester.makepyfile(test_case=CASE_TEST)
    result = run(pytester, "--edge-plot=out/plots", "--edge-report=out/r.md")
    result.assert_outcomes(passed=4)
    folder = pytester.path / "out" / "plots"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["sweep__tinycnn__rpi4__1x3x32x32__board.svg",
                     "tinycnn__2xrpi4__1x3x32x32__board.svg",
                     "tinycnn__3xrpi4__1x3x32x32__board.svg"]
    ids = svg_ids(folder / "tinycnn__3xrpi4__1x3x32x32__board.svg")
    strategies = {i.split("__")[1] for i in ids if i.startswith("bar__")}
    assert strategies == {"layer", "spatial"}
    assert "edge energy picture written to out/plots/tinycnn__2xrpi4" in result.stdout.str()
    md = (pytester.path / "out" / "r.md").read_text()
    assert "![tinycnn__2xrpi4__1x3x32x32__board](plots/tinycnn__2xrpi4__1x3x32x32__board.svg)" \
        in md
    job = summary.read_text()
    assert "## Pictures" in job and "tinycnn__2xrpi4__1x3x32x32__board.svg`" in job


def test_edge_plot_from_the_ini_file_writes_one_png(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI + "edge_plot = pictures/all.png\n")
    pytester.makepyfile(test_case=CASE_TEST)
    run(pytester).assert_outcomes(passed=2)
    assert (pytester.path / "pictures" / "all.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_bad_picture_path_or_no_matplotlib_is_a_usage_error_naming_the_extra(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_case=CASE_TEST)
    result = run(pytester, "--edge-plot=x.pdf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edge-plot='x.pdf' (from the command line) has an unknown "
                                 "picture suffix '.pdf'; expected .svg or .png*"])
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # importing it raises ImportError
    result = run(pytester, "--edge-plot=x.svg")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert ("--edge-plot='x.svg' (from the command line) needs matplotlib, which is not "
            "installed; install it with pip install 'pytest-edgeenergy[plot]'"
            in result.stderr.str())


def test_history_plot_draws_each_case_with_the_commits_on_the_axis(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    pytester.makeini(INI + "edge_autosave = true\n")
    pytester.makepyfile(test_case=CASE_TEST)
    for _ in range(2):
        run(pytester).assert_outcomes(passed=2)
    capsys.readouterr()
    target = pytester.path / "trend.svg"
    assert main(["history", "--dir", str(pytester.path / ".edgeenergy"), "--plot",
                 str(target)]) == 0
    assert f"picture written to {target}" in capsys.readouterr().out
    ids = svg_ids(target)
    assert "trend__tinycnn|layer|2xrpi4|1x3x32x32|board" in ids
    assert "trend__tinycnn|spatial|2xrpi4|1x3x32x32|board" in ids
    with pytest.raises(SystemExit) as exit_info:
        main(["history", "--plot", "trend.gif"])
    assert exit_info.value.code == 2
    assert "unknown picture suffix" in capsys.readouterr().err


@pytest.mark.heavy  # a pytest subprocess with two xdist workers
def test_under_xdist_the_workers_measured_rows_reach_the_controllers_report(
        metered: pytest.Pytester) -> None:
    result = run_subprocess(metered, "-n", "2", "--edge-meter=counting-fake",
                            "--edge-report=r.json")
    result.assert_outcomes(passed=2)
    assert result.stdout.str().count("measured beside estimated (meter counting-fake)") == 1
    rows = json.loads((metered.path / "r.json").read_text())["measured"]["rows"]
    assert sorted(r["case"] for r in rows) == ["tinycnn|layer|2xrpi4|1x3x32x32|board",
                                               "tinycnn|spatial|2xrpi4|1x3x32x32|board"]
    assert all(r["measured_j"] == pytest.approx(0.005, rel=0.02) for r in rows)


@pytest.mark.heavy  # two gloo worker processes, each measuring its share
def test_under_gloo_each_device_is_measured_by_its_own_rank_beside_its_estimate(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # The fake meter of tests/unit/fake_share_meter.py, found by the spawned workers too:
    # each process counts its own MACs and bytes (1e-7 J per MAC, 1e-6 J per byte).
    monkeypatch.syspath_prepend(str(REPO_ROOT / "tests" / "unit"))
    monkeypatch.setenv("EDGEENERGY_METER_MODULES", "fake_share_meter")
    pytester.makeini(INI)
    pytester.makepyfile(test_case=(
        "def test_case(edge_run):\n"
        "    result = edge_run()\n"
        "    assert result.measured is None  # the local backend's one row\n"
        "    rows = result.measured_devices\n"
        "    assert [r.device.split(' (')[0] for r in rows] == ['device 0', 'device 1']\n"
        "    assert rows[0].measured_j > 0 and rows[1].measured_j is None\n"))
    spec = "share-fake:off=edgeenergy-gloo-device-1"
    result = run(pytester, "--edge-backend=gloo", f"--edge-meter={spec}", "--edge-report=r.json",
                 "--edge-report=r.md")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    print(out[out.index("measured beside estimated"):])  # what the report looks like
    assert "With the gloo backend each rank measured the machine it runs on" in out
    data = json.loads((pytester.path / "r.json").read_text())
    rows = {(r["case"], r["device"].split(" (")[0]): r for r in data["measured"]["rows"]}
    assert len(rows) == 4
    for case in data["cases"]:
        first, second = case["energy"]["devices"]
        row = rows[(case["key"], "device 0")]
        assert row["measured_j"] == pytest.approx(
            1e-7 * first["macs"] + 1e-6 * (first["bytes_sent"] + first["bytes_received"]),
            rel=1e-6)
        assert row["estimated_j"] == pytest.approx(first["compute_j"] + first["comm_j"])
        assert row["ratio"] == pytest.approx(row["measured_j"] / row["estimated_j"])
        assert row["stable"] and "share-fake in process edgeenergy-gloo-device-0" in row["how"]
        unmeasured = rows[(case["key"], "device 1")]
        assert unmeasured["measured_j"] is None and unmeasured["ratio"] is None
        assert unmeasured["reason"] == "share-fake is off in process edgeenergy-gloo-device-1"
        assert unmeasured["estimated_j"] == pytest.approx(second["compute_j"] + second["comm_j"])
    md = (pytester.path / "r.md").read_text()
    assert "device 1 (rank 1, host" in md and "| unavailable " in md
