"""The comparison report: the terminal tables, the three files parsed back, atomic writes."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import sys
from pathlib import Path

import pytest
from edge_project import CASE_TEST

from pytest_edgeenergy.atomic import write_atomic
from pytest_edgeenergy.plugin.testing import plugin_args, warm_up
from pytest_edgeenergy.records.report import build_report
from pytest_edgeenergy.records.results import (
    NOT_EQUIVALENT,
    PASSED,
    CaseEnergy,
    CaseResult,
    DeviceResult,
    ResultCollector,
)

pytest_plugins = ["pytester"]
warm_up()

INI = "[pytest]\nedge_models = tinycnn\nedge_devices = 2\n"


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """One run of the four strategies on tinycnn with all three report files."""
    pytester_dir = tmp_path_factory.mktemp("reported")
    (pytester_dir / "pytest.ini").write_text(INI)
    (pytester_dir / "test_reported_case.py").write_text(CASE_TEST)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), _chdir(pytester_dir):
        ret = pytest.main([*plugin_args(), "-p", "no:cacheprovider", "--edge-report=r/r.md",
                           "--edge-report=r/r.json", "--edge-report=r/r.csv", str(pytester_dir)])
    sys.modules.pop("test_reported_case", None)
    assert ret == 0, out.getvalue()
    return out.getvalue(), pytester_dir / "r"


class _chdir:  # noqa: N801 - reads as the context manager it is
    def __init__(self, path: Path) -> None:
        self.path, self.old = path, Path.cwd()

    def __enter__(self) -> None:
        os.chdir(self.path)

    def __exit__(self, *exc: object) -> None:
        os.chdir(self.old)


def test_the_terminal_shows_one_row_per_strategy_with_the_best_marked(
        reported: tuple[str, Path]) -> None:
    """Per model and cluster, every strategy, ranked, the best marked; two breakdowns."""
    text, _ = reported
    assert text.count("= edge energy =") == 1
    lines = text.splitlines()
    start = lines.index("tinycnn on 2xrpi4 (input 1x3x32x32, energy model board)")
    header = lines[start + 1].split()
    assert header[:4] == ["strategy", "rank", "max", "device"]
    rows = [line.split() for line in lines[start + 3:start + 8]]
    assert sorted(r[0] for r in rows) == ["input-channel", "layer", "output-channel", "search",
                                          "spatial"]
    assert rows[0][1:3] == ["1", "(best)"]
    assert [r[1] for r in rows[1:]] == ["2", "3", "4", "5"]
    assert sum("per device, best strategy" in line for line in lines) == 1
    assert sum("per device, worst strategy" in line for line in lines) == 1


def test_the_json_report_holds_every_number_and_matches_the_table(
        reported: tuple[str, Path]) -> None:
    """Parsed back, the JSON has each case, per device, and the same ranks as the terminal."""
    text, folder = reported
    data = json.loads((folder / "r.json").read_text())
    assert data["format"] == "pytest-edgeenergy-report/1"
    assert len(data["cases"]) == 5 and data["failures"] == []
    group = data["groups"][0]
    assert (group["model"], group["cluster"], group["input_shape"]) == (
        "tinycnn", "2xrpi4", [1, 3, 32, 32])
    by_strategy = {c["strategy"]: c for c in data["cases"]}
    best = min(by_strategy.values(), key=lambda c: c["energy"]["max_device_j"])
    assert group["best"] == best["strategy"]
    for case in data["cases"]:
        energy = case["energy"]
        assert len(energy["devices"]) == 2
        assert math.isclose(energy["total_j"], sum(d["total_j"] for d in energy["devices"]))
        assert energy["max_device_j"] == max(d["total_j"] for d in energy["devices"])
        for device in energy["devices"]:
            assert math.isclose(device["total_j"],
                                device["compute_j"] + device["comm_j"] + device["static_j"])
            assert len(device["profile_sha256"]) == 64
        assert CaseResult.from_dict(case).to_dict() == case
        # The terminal shows the same figure to four significant digits.
        assert f"{energy['max_device_j']:.4g}" in text


def test_the_csv_report_has_one_row_per_case_with_raw_numbers(
        reported: tuple[str, Path]) -> None:
    """Parsed back, the CSV's figures equal the JSON's exactly."""
    _, folder = reported
    rows = list(csv.DictReader(io.StringIO((folder / "r.csv").read_text())))
    cases = {c["strategy"]: c for c in json.loads((folder / "r.json").read_text())["cases"]}
    assert len(rows) == 5
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert [r["best"] for r in rows] == ["True", "False", "False", "False", "False"]
    for row in rows:
        energy = cases[row["strategy"]]["energy"]
        assert float(row["max_device_j"]) == energy["max_device_j"]
        assert float(row["total_j"]) == energy["total_j"]
        assert int(row["comm_bytes"]) == energy["comm_bytes"]
        assert row["key"] == cases[row["strategy"]]["key"]


def test_the_markdown_report_has_the_same_tables(reported: tuple[str, Path]) -> None:
    """GitHub-flavoured tables, for a CI job summary."""
    _, folder = reported
    md = (folder / "r.md").read_text()
    assert md.startswith("# Edge energy report\n")
    assert "## tinycnn on 2xrpi4 (input 1x3x32x32, energy model board)" in md
    assert "| strategy " in md and "1 (best)" in md
    assert md.count("### tinycnn on 2xrpi4: per device") == 2


def test_a_report_that_cannot_be_written_fails_the_run(pytester: pytest.Pytester) -> None:
    """The tests pass, the summary says why, and the exit status is 1 (set at session end)."""
    pytester.makeini(INI + "edge_strategies = layer\n")
    # A folder appears where the report goes after the options were checked (a path under a
    # file, or a folder, given at the start is a usage error instead).
    pytester.makepyfile(test_case=CASE_TEST + "\n\ndef test_zz_blocker():\n"
                        "    import os\n    os.mkdir('r.json')\n")
    result = pytester.runpytest(*plugin_args(), "-p", "no:cacheprovider", "-p", "no:randomly",
                                "--edge-report=r.json")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["could not write the edge energy report */r.json: *"])
    assert "Traceback" not in result.stdout.str()


def test_an_interrupted_write_keeps_the_old_file(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing rename leaves the previous report intact and no temporary file behind."""
    target = tmp_path / "r.json"
    target.write_text("old")

    def fail(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def _case(strategy: str, max_j: float, *, fits: bool = True, status: str = PASSED,
          nodeid: str = "t::x") -> CaseResult:
    device = DeviceResult(index=0, profile="rpi4", profile_sha256="0" * 64, busy_s=1.0, comm_s=0.5,
                          compute_j=max_j / 2, comm_j=0.0, static_j=max_j / 2, total_j=max_j,
                          macs=10, bytes_sent=0, bytes_received=0, peak_bytes=100,
                          memory_bytes=1000 if fits else 50, fits=fits, idle=False)
    energy = CaseEnergy("1", 1.0, max_j, max_j, max_j, 0, 10, 0, (device,))
    return CaseResult("m", strategy, {}, "1xrpi4", (1, 3, 8, 8), "board", status, nodeid,
                      energy=energy)


def test_strategies_that_fit_rank_before_cheaper_ones_that_do_not() -> None:
    """A strategy that runs out of memory cannot be the best, however little it spends."""
    report = build_report([_case("a", 5.0), _case("b", 1.0, fits=False), _case("c", 3.0)], [])
    group = report.groups[0]
    assert [(r.case.strategy, r.rank) for r in group.ranked] == [("c", 1), ("a", 2), ("b", 3)]
    assert group.best is not None and group.best.strategy == "c"


def test_a_case_run_twice_counts_once_and_a_failure_wins() -> None:
    """Two tests of one case make one row; if either failed, the failed record is kept."""
    collector = ResultCollector()
    collector.add(_case("a", 1.0, nodeid="t::b"))
    collector.add(_case("a", 1.0, status=NOT_EQUIVALENT, nodeid="t::c"))
    collector.add(_case("a", 1.0, nodeid="t::a"))
    assert [c.nodeid for c in collector.cases()] == ["t::c"]
    assert [c.nodeid for c in collector.failures()] == ["t::c"]


def test_a_case_record_survives_a_json_round_trip() -> None:
    """to_dict / from_dict are inverse, through JSON text, with stable keys."""
    case = _case("spatial(fuse=3)", 2.5)
    data = json.loads(json.dumps(case.to_dict()))
    assert CaseResult.from_dict(data) == case
    assert sorted(data) == ["cluster", "energy", "energy_model", "explanation", "format",
                            "input_shape", "key", "max_abs_error", "message", "model", "nodeid",
                            "scenario", "sensitivity", "status", "strategy", "strategy_params",
                            "tolerance"]
    with pytest.raises(ValueError, match="not a pytest-edgeenergy case record"):
        CaseResult.from_dict({"format": "other"})
