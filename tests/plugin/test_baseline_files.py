"""The baseline file is never lost: a bad file is a clear error and stays byte for byte, an
update that cannot rename leaves the old file, and under pytest-xdist no entry is lost."""

from __future__ import annotations

import fnmatch
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from edge_project import CASE_TEST, INI, LAYER, make_project

from pytest_edgeenergy.plugin.testing import plugin_args, run, run_subprocess, warm_up
from pytest_edgeenergy.records.baseline import (
    BASELINE_FORMAT,
    DEFAULT_BASELINE,
    BaselineError,
    load_baseline,
)

pytest_plugins = ["pytester"]
warm_up()


@pytest.fixture(scope="module")
def good_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A valid baseline of two cases, recorded once for the module."""
    folder = tmp_path_factory.mktemp("good")
    (folder / "tox.ini").write_text(INI)
    (folder / "test_case.py").write_text(CASE_TEST)
    old = Path.cwd()
    os.chdir(folder)
    try:
        assert pytest.main([*plugin_args(), "-q", "-p", "no:cacheprovider",
                            "--edge-update-baseline", str(folder)]) == 0
    finally:
        os.chdir(old)
        sys.modules.pop("test_case", None)  # the pytester projects have their own test_case
    return (folder / DEFAULT_BASELINE).read_text()


def _edit(mutate: Callable[[dict[str, object]], object]) -> Callable[[str], bytes]:
    def apply(text: str) -> bytes:
        data = json.loads(text)
        mutate(data)
        return json.dumps(data, indent=2, sort_keys=True).encode()
    return apply


def _entry(data: dict[str, object]) -> dict[str, object]:
    cases = data["cases"]
    assert isinstance(cases, dict)
    entry = cases[LAYER]
    assert isinstance(entry, dict)
    return entry


def _energy(data: dict[str, object]) -> dict[str, object]:
    energy = _entry(data)["energy"]
    assert isinstance(energy, dict)
    return energy


# (id, how the good file is broken, what the message must say)
BROKEN: list[tuple[str, Callable[[str], bytes], str]] = [
    ("truncated", lambda t: t[: len(t) // 2].encode(),
     "is not valid JSON: Unterminated string * (line *, column *; the file ends early: "
     "truncated?)"),
    ("empty", lambda t: b"", "is empty (truncated?): expected a JSON object"),
    ("binary", lambda t: b"\x89PNG\r\n\x1a\n\xff\xfe",
     "is not UTF-8 text (byte *): not a JSON file"),
    ("foreign-object", lambda t: b'{"benchmarks": [], "machine_info": {}}\n',
     'is not a pytest-edgeenergy baseline: it has no "format": '
     f'"{BASELINE_FORMAT}" field (found format None; its keys: benchmarks, machine_info)'),
    ("foreign-list", lambda t: b"[1, 2, 3]\n", "holds JSON list, not an object: it was not "
     "written by pytest-edgeenergy"),
    ("newer-format", _edit(lambda d: d.update(format="pytest-edgeenergy-baseline/9")),
     "has format 'pytest-edgeenergy-baseline/9', which this version of pytest-edgeenergy "
     "(0.1.0) cannot read *: upgrade pytest-edgeenergy"),
    ("cases-not-object", _edit(lambda d: d.update(cases=[])),
     "field 'cases' must be an object of case entries, got []"),
    ("figure-missing", _edit(lambda d: _energy(d).pop("makespan_s")),
     f"entry '{LAYER}': energy: field 'makespan_s' must be a finite number of 0 or more, got "
     "nothing (the field is missing)"),
    ("figure-a-string", _edit(lambda d: _energy(d).update(max_device_j="0.5")),
     f"entry '{LAYER}': energy: field 'max_device_j' must be a finite number of 0 or more, "
     'got "0.5"'),
    ("figure-negative", _edit(lambda d: _energy(d).update(total_j=-1.0)),
     "energy: field 'total_j' must be a finite number of 0 or more, got -1.0"),
    ("device-missing-field", _edit(lambda d: _energy(d)["devices"][1].pop("total_j")),  # type: ignore[index]
     f"entry '{LAYER}': energy: device 1: field 'total_j' must be *, got nothing *"),
    ("no-devices", _edit(lambda d: _energy(d).update(devices=[])),
     "energy: field 'devices' must be a non-empty list, got []"),
    ("key-mismatch", _edit(lambda d: _entry(d).update(strategy="spatial")),
     f"entry '{LAYER}': its fields make the key 'tinycnn|spatial|2xrpi4|1x3x32x32|board', not "
     "the key it is filed under"),
    ("not-a-number", lambda t: t.replace('"makespan_s": 0.', '"makespan_s": NaN, "x": 0.', 1)
     .encode(), "is not valid: NaN is not a number JSON allows"),
    ("infinite", lambda t: t.replace('"makespan_s": 0.', '"makespan_s": 1e999, "x": 0.', 1)
     .encode(), "energy: field 'makespan_s' must be a finite number of 0 or more, got inf"),
    ("nested", lambda t: b"[" * 100_000 + b"]" * 100_000, "is nested too deeply to be ours"),
    ("device-dropped", _edit(lambda d: _energy(d)["devices"].pop()),  # type: ignore[attr-defined]
     f"entry '{LAYER}': its 1 device(s) (rpi4) are not the cluster '2xrpi4'"),
    ("duplicate-key", lambda t: t.replace('"cases": {', f'"cases": {{"{LAYER}": {{}},', 1)
     .encode(), f"is not valid: the key '{LAYER}' appears twice in one object *"),
]


@pytest.mark.parametrize(("name", "breaker", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_or_foreign_baseline_is_a_clear_error_that_loading_reports(
        tmp_path: Path, good_text: str, name: str, breaker: Callable[[str], bytes],
        message: str) -> None:
    """Every way of breaking the file has its own message naming the file."""
    path = tmp_path / "baseline.json"
    path.write_bytes(breaker(good_text))
    with pytest.raises(BaselineError) as info:
        load_baseline(path)
    text = str(info.value)
    assert str(path) in text
    assert fnmatch.fnmatchcase(text, f"*{message}*"), text


@pytest.mark.parametrize(("name", "breaker", "message"),
                         [b for b in BROKEN if b[0] in ("truncated", "foreign-object")],
                         ids=["truncated", "foreign"])
@pytest.mark.parametrize("update", [False, True], ids=["compare", "update"])
def test_a_truncated_or_foreign_baseline_stops_the_run_and_stays_byte_for_byte(
        pytester: pytest.Pytester, good_text: str, name: str, breaker: Callable[[str], bytes],
        message: str, update: bool) -> None:
    """Usage error (exit 4) before any test runs, naming option, file and fault; the file is
    not touched, even with --edge-update-baseline."""
    make_project(pytester)
    path = pytester.path / DEFAULT_BASELINE
    path.parent.mkdir()
    broken = breaker(good_text)
    path.write_bytes(broken)
    result = run(pytester, *(["--edge-update-baseline"] if update else []))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        f"ERROR: --edge-baseline='{path}' (from the default): baseline {path} {message}. The "
        "file was left as it is (pytest-edgeenergy never writes over a file it cannot read, "
        "--edge-update-baseline included): restore it from version control, or delete it or "
        "name another file to record a new baseline"])
    assert path.read_bytes() == broken
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_the_baseline_option_and_ini_key_name_the_file(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, good_text: str) -> None:
    """``edge_baseline`` (relative to the ini file) and ``--edge-baseline`` (relative to the
    rootdir, wherever pytest starts) pick the file; a folder is a usage error."""
    pytester.makeini(INI + "edge_baseline = ci/energy.json\n")
    pytester.makepyfile(test_case=CASE_TEST)
    run(pytester, "--edge-update-baseline").assert_outcomes(passed=2)
    assert (pytester.path / "ci" / "energy.json").read_text() == good_text
    monkeypatch.chdir(pytester.mkdir("sub"))
    result = run(pytester, "--edge-baseline=other.json", "--edge-update-baseline",
                 str(pytester.path))
    monkeypatch.chdir(pytester.path)
    assert result.ret == 0
    assert (pytester.path / "other.json").read_text() == good_text  # the rootdir, not cwd
    result = run(pytester, "--edge-baseline=ci")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --edge-baseline='*/ci' (from the command line) is a "
                                 "folder; expected the baseline's file name, such as *"])


FAILING_RENAME = """
import os
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    def crash(src, dst):
        raise OSError(28, "No space left on device (simulated)")
    os.replace = crash  # the plugin's atomic write renames after this hook
"""


def test_an_update_whose_rename_fails_leaves_the_old_baseline_intact(
        pytester: pytest.Pytester, good_text: str) -> None:
    """The new text goes to a temporary file and is renamed over the old one: when the rename
    fails, the old file is byte for byte the same, no temporary file is left, and the run
    fails with the reason."""
    make_project(pytester)
    path = pytester.path / DEFAULT_BASELINE
    path.parent.mkdir()
    old = good_text.replace('"max_device_j": 0.', '"max_device_j": 0.0', 1)  # so it differs
    path.write_text(old)
    pytester.makeconftest(FAILING_RENAME)
    real_replace = os.replace
    try:
        result = run(pytester, "--edge-update-baseline")
    finally:
        os.replace = real_replace
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        f"edge baseline {DEFAULT_BASELINE} was NOT updated",
        f"could not write the edge baseline {DEFAULT_BASELINE}: No space left on device "
        "(simulated); the previous file is unchanged"])
    assert path.read_text() == old
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.heavy  # a pytest subprocess with two xdist workers
def test_under_xdist_an_update_keeps_every_entry(pytester: pytest.Pytester,
                                                 good_text: str) -> None:
    """With ``-n 2`` the workers run the cases and the controller alone writes: the entries
    of both workers are there, the ones that did not run are kept, and the file equals the
    one a run without xdist writes."""
    pytester.makeini(INI)
    pytester.makepyfile(test_case=CASE_TEST, test_again=CASE_TEST.replace("test_case",
                                                                         "test_again"))
    path = pytester.path / DEFAULT_BASELINE
    path.parent.mkdir()
    path.write_text(good_text)  # layer and spatial on 2xrpi4
    args = ["--edge-update-baseline",
            "--edge-devices=3", "--edge-strategies=layer,spatial,output-channel,input-channel"]
    spread = run_subprocess(pytester, *args, "-n", "2")
    spread.assert_outcomes(passed=8)
    spread.stdout.fnmatch_lines([f"edge baseline {DEFAULT_BASELINE} updated: 4 added"])
    data = json.loads(path.read_text())
    keys = sorted(data["cases"])
    assert keys == sorted([*json.loads(good_text)["cases"],
                           *(f"tinycnn|{s}|3xrpi4|1x3x32x32|board" for s in
                             ("layer", "spatial", "output-channel", "input-channel"))])
    for key in keys:
        if "3xrpi4" in key:
            assert data["cases"][key]["tests"] == ["test_again.py::test_again",
                                                   "test_case.py::test_case"]
    spread_text = path.read_text()
    path.write_text(good_text)
    plain = run_subprocess(pytester, *args, "-p", "no:xdist")
    plain.assert_outcomes(passed=8)
    assert path.read_text() == spread_text
