"""Bad option values name the option, the value and where it came from; TOML arrays work
(issue 9, item 11)."""

from __future__ import annotations

import json

import pytest

from pytest_edgeenergy.plugin.testing import plugin_args, warm_up
from pytest_edgeenergy.records.baseline import BASELINE_FORMAT

pytest_plugins = ["pytester"]
warm_up()

CASE = "def test_case(edge_run):\n    edge_run()\n"


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in-process with the plugin, collecting only."""
    return pytester.runpytest(*plugin_args(), "-p", "no:cacheprovider", "--co", "-q", *args)


def _ids(result: pytest.RunResult) -> list[str]:
    return sorted(line.split("[", 1)[1].rstrip("]") for line in result.outlines if "::" in line)


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_a_boolean_ini_key_that_is_not_a_boolean_is_named_with_its_file(
        pytester: pytest.Pytester, value: str) -> None:
    ini = pytester.makeini(f"[pytest]\nedge_strict = {value}\n")
    pytester.makepyfile(test_x=CASE)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: edge_strict='{value}' (from the ini file {ini}) is not "
                                 f"a boolean; expected true or false*"])


def test_ini_lines_are_accepted_for_keys_that_take_lists(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nedge_models =\n    tinycnn\nedge_strategies = layer,spatial\n"
                     "edge_devices =\n    2\n    3\n")
    pytester.makepyfile(test_x=CASE)
    assert _ids(run(pytester)) == ["tinycnn-layer-2xrpi4", "tinycnn-layer-3xrpi4",
                                   "tinycnn-spatial-2xrpi4", "tinycnn-spatial-3xrpi4"]


def test_toml_arrays_are_accepted_for_keys_that_take_lists(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nedge_devices = [2, 4]\n'
                               'edge_models = ["tinycnn"]\nedge_strategies = ["layer"]\n')
    pytester.makepyfile(test_x=CASE)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.OK
    assert _ids(result) == ["tinycnn-layer-2xrpi4", "tinycnn-layer-4xrpi4"]


def test_an_unknown_name_in_a_toml_array_is_named_alone(pytester: pytest.Pytester) -> None:
    pyproject = pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\nedge_models = ["tinycnn", "nope"]\n')
    pytester.makepyfile(test_x=CASE)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: edge_models='tinycnn,nope' (from the ini file "
                                 f"{pyproject}) names an unknown model 'nope'; valid choices:*"])


@pytest.mark.parametrize(("key", "message"), [
    ("edge_baseline", "edge_baseline='a,b' (from the ini file *) is a list; give one value*"),
    ("edge_strict", "edge_strict=\"?'a', 'b'?\" (from the ini file *) is not a boolean*"),
])
def test_a_toml_array_for_a_single_value_key_is_refused_by_name(
        pytester: pytest.Pytester, key: str, message: str) -> None:
    pytester.makepyprojecttoml(f'[tool.pytest.ini_options]\n{key} = ["a", "b"]\n')
    pytester.makepyfile(test_x=CASE)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_an_older_baseline_format_says_to_record_again_not_to_upgrade(
        pytester: pytest.Pytester) -> None:
    family = BASELINE_FORMAT.rsplit("/", 1)[0]
    (pytester.path / "b.json").write_text(json.dumps({"format": f"{family}/0", "cases": {}}))
    pytester.makepyfile(test_x=CASE)
    result = run(pytester, "--edge-baseline=b.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*written by an older version; move it away and record a new "
                                 "one with pytest --edge-update-baseline*"])
    assert "upgrade pytest-edgeenergy" not in result.stderr.str()


def test_a_report_path_that_is_a_folder_is_named_as_one(pytester: pytest.Pytester) -> None:
    (pytester.path / "out").mkdir()
    pytester.makepyfile(test_x=CASE)
    result = run(pytester, "--edge-report=out")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --edge-report='out' (from the command line) is a "
                                 "folder; expected a file name ending in .md, .json or .csv"])


def test_a_report_path_under_a_file_names_that_file(pytester: pytest.Pytester) -> None:
    blocker = pytester.path / "afile"
    blocker.write_text("")
    pytester.makepyfile(test_x=CASE)
    result = run(pytester, "--edge-report=afile/r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --edge-report='afile/r.json' (from the command line) "
                                 f"cannot be written: {blocker} is a file, not a folder*"])


def test_a_cluster_written_like_its_signature_is_accepted(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nedge_models = tinycnn\nedge_strategies = layer\n")
    pytester.makepyfile(test_x=CASE)
    result = run(pytester, "--edge-cluster=rpi4+jetson-nano-10w")
    assert result.ret == pytest.ExitCode.OK
    assert _ids(result) == ["tinycnn-layer-rpi4+jetson-nano-10w"]
    assert _ids(run(pytester, "--edge-cluster=rpi4+rpi4")) == ["tinycnn-layer-2xrpi4"]
