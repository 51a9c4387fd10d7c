"""The baseline: created, compared, failed on regressions, updated; new and unused entries.

Each test is a small project (tinycnn on two Raspberry Pi 4) run in-process with pytester. A
changed device is a copy of the shipped ``rpi4.toml`` with one figure scaled, in a user
device folder (``--edge-device-dir``): the cluster keeps its name, so the cases keep their
keys, while the profile's sha256 and figures move.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from edge_project import CASE_TEST, HAND_OFF

from pytest_edgeenergy.plugin.testing import run, warm_up, write_profile_variant
from pytest_edgeenergy.records.baseline import BASELINE_FORMAT, DEFAULT_BASELINE

pytest_plugins = ["pytester"]
warm_up()

INI = "[pytest]\nedge_models = tinycnn\nedge_devices = 2\n"
KEYS = [f"tinycnn|{s}|2xrpi4|1x3x32x32|board"
        for s in ("input-channel", "layer", "output-channel", "search", "spatial")]

# A strategy a user adds in conftest.py.
HAND_OFF_CONFTEST = HAND_OFF + """

def pytest_edgeenergy_add_strategies(config):
    return [HandOff]
"""


def baseline_path(pytester: pytest.Pytester) -> Path:
    """The default baseline of the project."""
    return pytester.path / DEFAULT_BASELINE


_RECORDED: list[bytes] = []
"""The baseline a project of this module recorded: the same ini file, test file and profiles
record the same bytes in any folder, so the other projects start from a copy."""


def record(pytester: pytest.Pytester) -> pytest.Pytester:
    """Write the project of five cases (the four classic strategies and search) and record its
    baseline with the plugin."""
    pytester.makeini(INI)
    pytester.makepyfile(test_case=CASE_TEST)
    result = run(pytester, "--edge-update-baseline")
    result.assert_outcomes(passed=5)
    assert result.ret == 0
    _RECORDED[:] = [baseline_path(pytester).read_bytes()]
    return pytester


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project of five cases whose baseline has been recorded: by the plugin for the first
    test that asks, a copy of that file for the others."""
    if not _RECORDED:
        return record(pytester)
    pytester.makeini(INI)
    pytester.makepyfile(test_case=CASE_TEST)
    baseline_path(pytester).parent.mkdir(parents=True, exist_ok=True)
    baseline_path(pytester).write_bytes(_RECORDED[0])
    return pytester


def test_an_update_creates_a_sorted_diffable_baseline_with_its_metadata(
        pytester: pytest.Pytester) -> None:
    """One block per case in key order, sorted keys, a trailing newline, every figure, the
    plugin and energy model versions and each profile's sha256; a second update is a no-op."""
    project = record(pytester)  # the plugin writes the file here, always
    path = baseline_path(project)
    text = path.read_text()
    data = json.loads(text)
    assert data["format"] == BASELINE_FORMAT
    assert list(data["cases"]) == KEYS
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"
    entry = data["cases"][KEYS[1]]
    assert entry["plugin_version"] == "0.1.0"
    assert entry["energy"]["energy_model_version"] == "1"
    assert entry["energy_model"] == "board"
    assert len(entry["profiles"]["rpi4"]) == 64
    assert entry["tests"] == ["test_case.py::test_case"]
    assert [d["profile_sha256"] for d in entry["energy"]["devices"]] == [
        entry["profiles"]["rpi4"]] * 2
    for field in ("max_abs_error", "tolerance", "nodeid", "status"):  # machine-dependent
        assert field not in entry
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's private 0o600
    again = run(project, "--edge-update-baseline")
    again.stdout.fnmatch_lines([f"edge baseline {DEFAULT_BASELINE} is up to date (5 unchanged)"])
    assert path.read_text() == text


def test_a_run_against_an_unchanged_baseline_passes_and_says_so(project: pytest.Pytester) -> None:
    """Every case is compared with the default thresholds and found unchanged."""
    result = run(project)
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines([
        f"edgeenergy baseline: {DEFAULT_BASELINE} (5 cases), fail on device_j:0.1%, *",
        f"edge baseline {DEFAULT_BASELINE}: 5 case(s) compared (5 unchanged); thresholds "
        "device_j:0.1%, makespan_s:0.1%, comm_bytes:0, device_peak_bytes:0, unfit_devices:0"])


def test_active_w_raised_in_a_user_profile_fails_each_case_naming_device_and_profile(
        project: pytest.Pytester) -> None:
    """+10 % active power: each test fails with its case, every device's old and new joules,
    and the profile whose sha256 changed, with where it now comes from."""
    before = baseline_path(project).read_bytes()
    profile = write_profile_variant(project.path / "dev", active_w=1.1)
    result = run(project, "--edge-device-dir=dev")
    result.assert_outcomes(failed=5)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*_ test_case[[]tinycnn-layer-2xrpi4[]] _*",
        f"tinycnn|layer|2xrpi4|1x3x32x32|board: regressed against the baseline "
        f"{DEFAULT_BASELINE}",
        "  device_j grew past 0.1% on devices 0 (rpi4), 1 (rpi4) (most: 0.001661 J -> "
        "0.001701 J, +2.38%)",
        "    device 0 (rpi4): 0.001661 J -> 0.001701 J (+2.38%)  <- past the limit",
        "    device 1 (rpi4): 0.001608 J -> 0.001638 J (+1.88%)  <- past the limit",
        "  since the baseline: device profile rpi4 changed (devices 0, 1: sha256 * -> *; now "
        f"{profile}); the plan is unchanged (same MACs, bytes and memory on every device)",
        "  if the change is intended, accept it: pytest --edge-update-baseline",
    ])
    result.stdout.fnmatch_lines([
        f"edge baseline {DEFAULT_BASELINE}: 5 case(s) compared (5 regressed); *",
        "  REGRESSED  tinycnn|input-channel|2xrpi4|1x3x32x32|board: device_j grew past 0.1% *"])
    assert baseline_path(project).read_bytes() == before  # comparing never writes


def test_active_w_lowered_is_an_improvement_that_strict_refuses_until_acknowledged(
        project: pytest.Pytester) -> None:
    """-10 %: reported as improved, the run passes; --edge-strict fails the cases; after an
    update strict passes again."""
    write_profile_variant(project.path / "dev", active_w=0.9)
    result = run(project, "--edge-device-dir=dev")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines([
        f"edge baseline {DEFAULT_BASELINE}: 5 case(s) compared (5 improved); *",
        "  improved   tinycnn|layer|2xrpi4|1x3x32x32|board: device_j shrank past 0.1% on "
        "devices 0 (rpi4), 1 (rpi4) (most: 0.001661 J -> 0.001622 J, -2.38%); device profile "
        "rpi4 changed *(acknowledge with pytest --edge-update-baseline)"])
    strict = run(project, "--edge-device-dir=dev", "--edge-strict")
    strict.assert_outcomes(failed=5)
    strict.stdout.fnmatch_lines([
        "tinycnn|layer|2xrpi4|1x3x32x32|board: improved past the thresholds against the "
        f"baseline {DEFAULT_BASELINE} (--edge-strict: acknowledge it)",
        "  device_j shrank past 0.1% on devices 0 (rpi4), 1 (rpi4) *"])
    run(project, "--edge-device-dir=dev", "--edge-update-baseline").assert_outcomes(passed=5)
    run(project, "--edge-device-dir=dev", "--edge-strict").assert_outcomes(passed=5)


def test_update_accepts_a_regression_and_says_what_changed(project: pytest.Pytester) -> None:
    """With --edge-update-baseline the regressed cases pass, the summary lists each updated
    entry with its figures and the moved profile, the file keeps its permissions, and the
    next run passes."""
    write_profile_variant(project.path / "dev", active_w=1.1)
    baseline_path(project).chmod(0o640)
    result = run(project, "--edge-device-dir=dev", "--edge-update-baseline")
    result.assert_outcomes(passed=5)
    assert stat.S_IMODE(baseline_path(project).stat().st_mode) == 0o640  # kept
    result.stdout.fnmatch_lines([
        f"edge baseline {DEFAULT_BASELINE} updated: 5 updated",
        "  updated    tinycnn|input-channel|2xrpi4|1x3x32x32|board: max_device_j 0.00913 J -> "
        "0.009176 J (+0.495%), total_j 0.01824 J -> 0.01833 J (+0.475%); device profile rpi4 "
        "changed (devices 0, 1: sha256 * -> *); the plan is unchanged *"])
    data = json.loads(baseline_path(project).read_text())
    assert data["cases"][KEYS[1]]["energy"]["max_device_j"] == pytest.approx(0.0017006, rel=1e-4)
    run(project, "--edge-device-dir=dev").assert_outcomes(passed=5)
    # Back to the shipped profile, the figures are lower than the new baseline's: improved.
    run(project).stdout.fnmatch_lines(["edge baseline *: 5 case(s) compared (5 improved); *"])


def test_a_strategy_added_in_conftest_is_new_and_one_removed_is_unused(
        project: pytest.Pytester) -> None:
    """A registered strategy appears as new (strict fails it); once recorded and no longer
    registered, its entry is unused (strict fails the run); an update removes it."""
    conftest = project.makeconftest(HAND_OFF_CONFTEST)
    result = run(project)
    result.assert_outcomes(passed=6)
    hand_off = "tinycnn|hand-off|2xrpi4|1x3x32x32|board"
    result.stdout.fnmatch_lines([
        f"edge baseline {DEFAULT_BASELINE}: 5 case(s) compared (5 unchanged, 1 new); *",
        f"  new        {hand_off}: not in the baseline (record it with pytest "
        "--edge-update-baseline)"])
    strict = run(project, "--edge-strict")
    strict.assert_outcomes(passed=5, failed=1)
    strict.stdout.fnmatch_lines([f"*{hand_off}: not in the baseline {DEFAULT_BASELINE} "
                                 "(--edge-strict: record it with pytest --edge-update-baseline)"])
    run(project, "--edge-update-baseline").stdout.fnmatch_lines([
        f"edge baseline {DEFAULT_BASELINE} updated: 1 added, 5 unchanged",
        f"  added      {hand_off}"])

    conftest.unlink()
    gone = run(project)
    gone.assert_outcomes(passed=5)
    assert gone.ret == 0  # unused is reported, not failed
    gone.stdout.fnmatch_lines([
        f"edge baseline {DEFAULT_BASELINE}: 5 case(s) compared (5 unchanged, 1 unused); *",
        f"  unused     {hand_off}: no test produced it although this run could have "
        "(pytest --edge-update-baseline removes it)"])
    assert run(project, "--edge-strict").ret == pytest.ExitCode.TESTS_FAILED
    run(project, "--edge-update-baseline").stdout.fnmatch_lines([
        f"edge baseline {DEFAULT_BASELINE} updated: 1 removed, 5 unchanged",
        f"  removed    {hand_off}: no test produced it although this run could have"])
    assert list(json.loads(baseline_path(project).read_text())["cases"]) == KEYS


def test_an_entry_whose_test_is_gone_from_its_file_is_unused(project: pytest.Pytester) -> None:
    """A second test with a batch of two records its own cases; once it is deleted from the
    file, its entries are unused, even under ``-k`` (its file was collected whole), but not
    when the file is not collected at all."""
    batch = CASE_TEST + (
        "\ndef test_batch(edge_run, edge_model):\n"
        "    from pytest_edgeenergy.plugin.fixtures import make_input\n"
        "    edge_run(input=make_input((2, *edge_model.input_shape[1:])))\n")
    project.makepyfile(test_case=batch)
    run(project, "--edge-update-baseline").stdout.fnmatch_lines(["*: 5 added, 5 unchanged"])
    batch_keys = [k.replace("1x3x32x32", "2x3x32x32") for k in KEYS]
    project.makepyfile(test_case=CASE_TEST)
    for args in ([], ["-k", "layer"]):
        result = run(project, *args)
        assert result.ret == 0
        result.stdout.fnmatch_lines(["*(*5 unused); *", *(f"  unused     {k}: *"
                                                           for k in batch_keys)])
    project.makepyfile(test_other=CASE_TEST.replace("test_case", "test_other"))
    assert "unused" not in run(project, "test_other.py").stdout.str().split("edge baseline")[-1]
    run(project, "--edge-update-baseline").stdout.fnmatch_lines(["*: 5 removed, 5 unchanged"])


@pytest.mark.parametrize("args", [
    ["-k", "layer"],  # a selection
    ["--edge-strategies=layer,spatial"],  # fewer strategies named
    ["--edge-devices=3"],  # another cluster: all its cases are new
    ["test_case.py::test_case[tinycnn-layer-2xrpi4]"],  # one parametrisation named
], ids=["k", "strategies", "cluster", "node-id"])
def test_a_run_that_could_not_produce_an_entry_does_not_call_it_unused(
        project: pytest.Pytester, args: list[str]) -> None:
    """Only a run that ran a test in full, for the entry's model, cluster and energy model
    (and, when strategies are named, its strategy), reports it unused; an update then keeps
    the entries it did not run."""
    before = json.loads(baseline_path(project).read_text())["cases"]
    result = run(project, *args)
    assert result.ret == 0
    summary = [line for line in result.outlines if line.startswith("edge baseline ")]
    assert len(summary) == 1 and "unused" not in summary[0]
    assert not any(line.startswith("  unused ") for line in result.outlines)
    assert run(project, "--edge-update-baseline", *args).ret == 0
    after = json.loads(baseline_path(project).read_text())["cases"]
    assert set(before) <= set(after)


def test_thresholds_come_from_the_option_or_the_ini_key(project: pytest.Pytester) -> None:
    """Under ``device_j:5%`` a 10 % power rise passes (at most +2.4 %); ``max_device_j:1%``
    fails only the layer case (+2.4 %; the others grow 0.5 % to 0.7 %); the ini key works
    alike; the command line wins over it. (The classic strategies only: search runs tinycnn
    whole on device 0, whose energy is mostly compute and grows 10 %.)"""
    classic = "--edge-strategies=layer,spatial,output-channel,input-channel"
    write_profile_variant(project.path / "dev", active_w=1.1)
    run(project, classic, "--edge-device-dir=dev", "--edge-fail-on=device_j:5%").assert_outcomes(
        passed=4)
    tight = run(project, classic, "--edge-device-dir=dev", "--edge-fail-on=max_device_j:1%")
    tight.assert_outcomes(passed=3, failed=1)
    tight.stdout.fnmatch_lines(["  max_device_j grew past 1%: 0.001661 J -> 0.001701 J (+2.38%)",
                                "    device 0 (rpi4): 0.001661 J -> 0.001701 J (+2.38%)",
                                "    device 1 (rpi4): 0.001608 J -> 0.001638 J (+1.88%)"])
    project.makeini(INI + "edge_fail_on =\n    max_device_j:1%\n    comm_bytes:0\n")
    run(project, classic, "--edge-device-dir=dev").assert_outcomes(passed=3, failed=1)
    run(project, classic, "--edge-device-dir=dev", "--edge-fail-on=none").assert_outcomes(
        passed=4)


@pytest.mark.parametrize(("value", "problem"), [
    ("max_devic_j:2%", "names an unknown metric 'max_devic_j' (did you mean 'max_device_j'?)"),
    ("max_device_j:two", "has a bad limit 'two' for max_device_j"),
    ("max_device_j:-1%", "has a bad limit '-1%' for max_device_j"),
    ("max_device_j", "'max_device_j' is not METRIC:LIMIT"),
])
@pytest.mark.parametrize("where", ["command line", "ini file"])
def test_a_bad_threshold_is_a_usage_error_naming_option_value_source_and_metrics(
        pytester: pytest.Pytester, value: str, problem: str, where: str) -> None:
    """Exit status 4 and one line: the option (or ini key), the value, where it came from,
    what is wrong and every valid metric."""
    pytester.makepyfile(test_case=CASE_TEST)
    if where == "ini file":
        pytester.makeini(f"{INI}edge_fail_on = {value}\n")
        result = run(pytester)
        spelled, source = "edge_fail_on", f"ini file {pytester.path / 'tox.ini'}"
    else:
        pytester.makeini(INI)
        result = run(pytester, f"--edge-fail-on={value}")
        spelled, source = "--edge-fail-on", "command line"
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        f"ERROR: {spelled}='{value}' (from the {source}) {problem}; expected METRIC:N% *; "
        "valid metrics: max_device_j, mean_device_j, total_j, makespan_s, comm_bytes, *"])


def test_without_a_baseline_nothing_is_compared_unless_strict_asks_for_one(
        pytester: pytest.Pytester) -> None:
    """No file: the run passes and says how to record one; with --edge-strict it fails."""
    pytester.makeini(INI + "edge_strategies = layer\n")
    pytester.makepyfile(test_case=CASE_TEST)
    result = run(pytester)
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        f"edgeenergy baseline: {DEFAULT_BASELINE} (none yet: nothing is compared)",
        f"edge baseline {DEFAULT_BASELINE} does not exist: nothing compared; record one with "
        "pytest --edge-update-baseline"])
    strict = run(pytester, "--edge-strict")
    strict.assert_outcomes(passed=1)
    assert strict.ret == pytest.ExitCode.TESTS_FAILED
    strict.stdout.fnmatch_lines(["edge baseline * does not exist: * (--edge-strict: a baseline "
                                 "is required)"])
    assert not baseline_path(pytester).exists()
