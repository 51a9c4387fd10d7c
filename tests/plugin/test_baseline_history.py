"""Saved runs (``--edge-autosave``) and the ``compare`` and ``history`` commands on them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from edge_project import CASE_TEST, INI, LAYER, SPATIAL, make_project

from pytest_edgeenergy.__main__ import main
from pytest_edgeenergy.plugin.testing import run, warm_up, write_profile_variant
from pytest_edgeenergy.records.baseline import DEFAULT_BASELINE
from pytest_edgeenergy.records.runs import RUN_FORMAT, list_runs

pytest_plugins = ["pytester"]
warm_up()


@pytest.fixture
def saved(pytester: pytest.Pytester) -> pytest.Pytester:
    """Two saved runs: the shipped rpi4, then one with active_w 10 % higher."""
    make_project(pytester)
    first = run(pytester, "--edge-autosave")
    first.assert_outcomes(passed=2)
    first.stdout.fnmatch_lines(["edge energy run saved to .edgeenergy/0001_*_nogit.json"])
    write_profile_variant(pytester.path / "dev", active_w=1.1)
    run(pytester, "--edge-autosave", "--edge-device-dir=dev").assert_outcomes(passed=2)
    return pytester


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``python -m pytest_edgeenergy`` in-process: (exit status, stdout and stderr)."""
    capsys.readouterr()  # drop what the pytest runs before printed
    try:
        status = main(list(args))
    except SystemExit as exc:
        status = int(exc.code or 0)
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_each_autosaved_run_is_one_sortably_named_file_with_its_metadata(
        saved: pytest.Pytester) -> None:
    """``NNNN_<UTC time>_<commit>.json``, oldest first, with time, git fields (null outside
    git) and every passed case as a baseline entry."""
    runs = list_runs(saved.path / ".edgeenergy")
    assert [p.name[:5] for p in runs] == ["0001_", "0002_"]
    assert all(re.fullmatch(r"\d{4}_\d{8}T\d{6}Z_nogit\.json", p.name) for p in runs)
    data = json.loads(runs[1].read_text())
    assert data["format"] == RUN_FORMAT
    assert data["run"]["number"] == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["run"]["time_utc"])
    assert (data["run"]["commit"], data["run"]["branch"], data["run"]["dirty"]) == (
        None, None, None)
    assert sorted(data["cases"]) == [LAYER, SPATIAL]
    assert data["cases"][LAYER]["tests"] == ["test_case.py::test_case"]
    assert data["failed"] == []
    saved.makeini(INI + "edge_history_dir = runs/energy\n")
    run(saved, "--edge-autosave").stdout.fnmatch_lines([
        "edge energy run saved to runs/energy/0001_*_nogit.json"])


def test_compare_prints_the_report_tables_old_to_new_and_fails_on_a_regression(
        saved: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    """Rows per strategy with rank and old -> new figures, per-device tables of the cases that
    moved, and the plugin's verdicts; exit 1. Without runs named: previous -> latest."""
    status, out = cli(capsys, "compare", "1", "2", "--dir", ".edgeenergy")
    assert status == 1
    lines = out.splitlines()
    assert lines[0] == "edge energy comparison"
    assert re.fullmatch(r"old: run 0001 \(\S+Z, no git\) \.edgeenergy/0001_\S+\.json", lines[2])
    assert lines[4] == ("thresholds: device_j:0.1%, makespan_s:0.1%, comm_bytes:0, "
                        "device_peak_bytes:0, unfit_devices:0")
    start = lines.index("tinycnn on 2xrpi4 (input 1x3x32x32, energy model board)")
    assert lines[start + 1].split()[:6] == ["strategy", "rank", "max", "device", "J", "change"]
    layer = lines[start + 3].split()
    assert layer[:6] == ["layer", "1", "0.001661", "->", "0.001701", "+2.38%"]
    assert layer[-2:] == ["REGRESSED", "device_j"]
    assert lines[start + 4].split()[:2] == ["spatial", "2"]
    device_table = lines.index(f"{LAYER}: per device")
    assert lines[device_table + 3].split()[:6] == ["0", "rpi4", "0.001661", "->", "0.001701",
                                                   "+2.38%"]
    assert "summary: 2 regressed" in lines
    assert (f"  REGRESSED {LAYER}: device_j grew past 0.1% on devices 0 (rpi4), 1 (rpi4) (most: "
            "0.001661 J -> 0.001701 J, +2.38%); device profile rpi4 changed") in out
    assert cli(capsys, "compare", "--dir", ".edgeenergy") == (status, out)
    assert cli(capsys, "compare", "2", "1", "--dir", ".edgeenergy",
               "--fail-on", "device_j:5%")[0] == 0


def test_compare_checks_a_run_against_the_baseline_and_prints_markdown(
        saved: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    """``compare RUN --baseline PATH``: the first run equals a baseline recorded from the same
    figures (exit 0), the second regressed (exit 1); ``--markdown`` gives GitHub tables."""
    run(saved, "--edge-update-baseline").assert_outcomes(passed=2)
    status, out = cli(capsys, "compare", "1", "--baseline", DEFAULT_BASELINE)
    assert status == 0
    assert f"old: baseline {DEFAULT_BASELINE}" in out
    assert "summary: 2 unchanged" in out
    status, out = cli(capsys, "compare", "latest", "--baseline", DEFAULT_BASELINE, "--markdown")
    assert status == 1
    assert out.startswith("# Edge energy comparison\n")
    assert "## tinycnn on 2xrpi4 (input 1x3x32x32, energy model board)" in out
    assert "| strategy " in out and "| REGRESSED device_j " in out
    assert f"- REGRESSED `{LAYER}`: device_j grew past 0.1%" in out


def test_history_prints_each_cases_trend_across_saved_runs(
        saved: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    """One table per case (``--case`` filters): run, time, commit, branch, dirty, value,
    change from the run before; ``--metric`` picks a case metric."""
    status, out = cli(capsys, "history", "--case", "layer")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == f"{LAYER}: max_device_j (J)"
    assert lines[1].split() == ["run", "time", "(UTC)", "commit", "branch", "dirty", "value",
                                "change"]
    assert lines[3].split()[0] == "0001" and lines[3].split()[-1] == "0.001661"
    assert lines[4].split()[0] == "0002" and lines[4].split()[-2:] == ["0.001701", "+2.38%"]
    assert lines[3].split()[2:5] == ["-", "-", "-"]  # no git here
    assert SPATIAL not in out
    status, out = cli(capsys, "history", "--metric", "comm_bytes", "--last", "1")
    assert status == 0
    assert out.count(": comm_bytes (MB)") == 2 and "0002" in out and "0001" not in out


def test_the_commands_say_clearly_what_is_wrong(saved: pytest.Pytester,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A missing run, a bad threshold, a device metric for history, an empty folder, a
    broken saved run: exit status 2 and one line."""
    status, out = cli(capsys, "compare", "1", "9")
    assert status == 2
    assert "no saved run number 9 in .edgeenergy (saved runs: 0001, 0002)" in out
    status, out = cli(capsys, "compare", "1", "2", "--fail-on", "joules:1%")
    assert (status, "--fail-on 'joules:1%' names an unknown metric 'joules'" in out) == (2, True)
    status, out = cli(capsys, "history", "--metric", "device_j")
    assert status == 2 and "--metric 'device_j' is not a case metric" in out
    status, out = cli(capsys, "history", "--dir", "nowhere")
    assert status == 2 and "no saved runs in nowhere" in out
    broken = list_runs(saved.path / ".edgeenergy")[0]
    broken.write_text(broken.read_text()[:100])
    status, out = cli(capsys, "compare")
    assert status == 2 and f"saved run .edgeenergy/{broken.name} is not valid JSON" in out


def test_python_minus_m_runs_the_commands(saved: pytest.Pytester) -> None:
    """The real entry point, in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-m", "pytest_edgeenergy", "history", "--case",
                           "spatial"], cwd=saved.path, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{SPATIAL}: max_device_j (J)\n")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_run_saved_in_a_git_checkout_records_commit_branch_and_dirty_flag(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Commit id, branch and whether tracked files changed; the history folder itself (not
    tracked) never makes the checkout dirty."""
    for name in ("GITHUB_HEAD_REF", "GITHUB_REF_NAME"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeini(INI.replace("layer,spatial", "layer"))
    pytester.makepyfile(test_case=CASE_TEST)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=pytester.path, check=True,
                              capture_output=True, text=True).stdout.strip()

    git("init", "-q", "-b", "energy-work")
    git("add", "tox.ini", "test_case.py")
    git("commit", "-q", "-m", "start")
    commit = git("rev-parse", "HEAD")
    run(pytester, "--edge-autosave").assert_outcomes(passed=1)
    (pytester.path / "test_case.py").write_text(CASE_TEST + "\n# edited\n")
    run(pytester, "--edge-autosave").assert_outcomes(passed=1)
    first, second = list_runs(pytester.path / ".edgeenergy")
    assert first.name.endswith(f"_{commit[:12]}.json")
    assert second.name.endswith(f"_{commit[:12]}_dirty.json")
    meta = [json.loads(p.read_text())["run"] for p in (first, second)]
    assert [(m["commit"], m["branch"], m["dirty"]) for m in meta] == [
        (commit, "energy-work", False), (commit, "energy-work", True)]
    status, out = cli(capsys, "history")
    assert status == 0
    rows = [line.split() for line in out.splitlines()[3:5]]
    assert [r[2:5] for r in rows] == [[commit[:12], "energy-work", "no"],
                                      [commit[:12], "energy-work", "yes"]]
