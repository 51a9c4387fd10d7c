"""Every option of the plugin, its ini twin, precedence, and every bad value's message."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edgeenergy.plugin.testing import run, warm_up
from pytest_edgeenergy.profiles import shipped_profiles_dir

pytest_plugins = ["pytester"]
warm_up()


def run_set(pytester: pytest.Pytester, where: str, ini: str, ini_lines: str,
            flags: list[str], *args: str) -> pytest.RunResult:
    """Run with settings given on the command line (``flags``) or in the ini file
    (``ini_lines`` added to ``ini``), as ``where`` says."""
    if where == "ini file":
        pytester.makeini(ini + ini_lines)
        return run(pytester, *args)
    pytester.makeini(ini)
    return run(pytester, *args, *flags)

CASE_TEST = """
def test_case(edge_run):
    edge_run()
"""


def collected_ids(result: pytest.RunResult) -> list[str]:
    """The parametrisation ids of ``test_case`` in ``--collect-only -q`` output."""
    return [line.split("[", 1)[1].rstrip("]") for line in result.outlines
            if line.startswith("test_case.py::test_case[")]


def write_profile(folder: Path, name: str) -> None:
    """A copy of the shipped rpi4 profile under another name."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (Path(str(shipped_profiles_dir())) / "rpi4.toml").read_text()
    lines = [f'name = "{name}"' if line.startswith("name =") else line
             for line in text.splitlines()]
    (folder / f"{name}.toml").write_text("\n".join(lines) + "\n")


@pytest.fixture
def case_file(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with one parametrised edge test."""
    pytester.makepyfile(test_case=CASE_TEST)
    return pytester


# (option, ini key, value, ids expected with --edge-models=tinycnn --edge-strategies=layer)
ID_OPTIONS = [
    ("--edge-devices", "edge_devices", "2,3", ["tinycnn-layer-2xrpi4", "tinycnn-layer-3xrpi4"]),
    ("--edge-device", "edge_device", "jetson-tx2", ["tinycnn-layer-4xjetson-tx2"]),
    ("--edge-cluster", "edge_cluster", "rpi4,jetson-nano-10w",
     ["tinycnn-layer-rpi4+jetson-nano-10w"]),
    ("--edge-models", "edge_models", "tinycnn,yolov2_tiny",
     ["tinycnn-layer-4xrpi4", "yolov2_tiny-layer-4xrpi4"]),
    ("--edge-strategies", "edge_strategies", "spatial,input-channel",
     ["tinycnn-spatial-4xrpi4", "tinycnn-input-channel-4xrpi4"]),
]


@pytest.mark.parametrize(("flag", "key", "value", "ids"), ID_OPTIONS,
                         ids=[o[0] for o in ID_OPTIONS])
def test_each_option_on_the_command_line_shapes_the_cases(
        case_file: pytest.Pytester, flag: str, key: str, value: str, ids: list[str]) -> None:
    """The command-line option decides which cases are collected."""
    defaults = {"--edge-models": "tinycnn", "--edge-strategies": "layer"}
    defaults.pop(flag, None)
    args = [f"{k}={v}" for k, v in defaults.items()]
    result = run(case_file, "--collect-only", "-q", *args, f"{flag}={value}")
    assert result.ret == 0, result.stderr.str()
    assert collected_ids(result) == ids


@pytest.mark.parametrize(("flag", "key", "value", "ids"), ID_OPTIONS,
                         ids=[o[1] for o in ID_OPTIONS])
def test_each_ini_key_shapes_the_cases_like_its_option(
        case_file: pytest.Pytester, flag: str, key: str, value: str, ids: list[str]) -> None:
    """The ini twin of each option has the same effect."""
    settings = {"edge_models": "tinycnn", "edge_strategies": "layer", key: value}
    case_file.makeini("[pytest]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))
    result = run(case_file, "--collect-only", "-q")
    assert result.ret == 0, result.stderr.str()
    assert collected_ids(result) == ids


def test_the_command_line_wins_over_the_ini_file(case_file: pytest.Pytester) -> None:
    """``--edge-devices`` replaces ``edge_devices`` from the ini file."""
    case_file.makeini("[pytest]\nedge_models = tinycnn\nedge_strategies = layer\n"
                      "edge_devices = 2\n")
    result = run(case_file, "--collect-only", "-q", "--edge-devices=3")
    assert collected_ids(result) == ["tinycnn-layer-3xrpi4"]


def test_a_command_line_cluster_overrides_an_ini_device_count(case_file: pytest.Pytester) -> None:
    """Precedence holds across options too: a cluster given on the command line wins."""
    case_file.makeini("[pytest]\nedge_models = tinycnn\nedge_strategies = layer\n"
                      "edge_devices = 2\n")
    result = run(case_file, "--collect-only", "-q", "--edge-cluster=2xrpi4,jetson-tx2")
    assert collected_ids(result) == ["tinycnn-layer-rpi4+rpi4+jetson-tx2"]


def test_the_defaults_are_four_rpi4_all_strategies_and_three_fast_models(
        case_file: pytest.Pytester) -> None:
    """Without options: 4 x rpi4, every registered strategy (the four classic ones and
    search), tinycnn/mobilenet_v2/resnet18."""
    ids = collected_ids(run(case_file, "--collect-only", "-q"))
    assert len(ids) == 15
    assert {i.rsplit("-", 1)[1] for i in ids} == {"4xrpi4"}
    assert {i.split("-", 1)[0] for i in ids} == {"tinycnn", "mobilenet_v2", "resnet18"}
    assert "resnet18-output-channel-4xrpi4" in ids


@pytest.mark.parametrize("where", ["command line", "ini file"])
def test_a_device_dir_adds_user_profiles(case_file: pytest.Pytester, where: str) -> None:
    """Profiles in ``--edge-device-dir`` (or ``edge_device_dir``) can be named as devices."""
    write_profile(case_file.path / "profiles", "mydev")
    base = "[pytest]\nedge_models = tinycnn\nedge_strategies = layer\n"
    result = run_set(case_file, where, base, "edge_device_dir = profiles\nedge_device = mydev\n",
                     ["--edge-device-dir=profiles", "--edge-device=mydev"], "--collect-only",
                     "-q")
    assert collected_ids(result) == ["tinycnn-layer-4xmydev"]


@pytest.mark.parametrize("where", ["command line", "ini file"])
def test_the_energy_model_option_picks_the_model(case_file: pytest.Pytester, where: str) -> None:
    """``--edge-energy-model=ops`` (or its ini key) prices the cases with the ops model."""
    base = "[pytest]\nedge_models = tinycnn\nedge_strategies = layer\n"
    result = run_set(case_file, where, base, "edge_energy_model = ops\n",
                     ["--edge-energy-model=ops"])
    assert result.ret == 0
    result.stdout.fnmatch_lines(["edgeenergy: clusters 4xrpi4; models tinycnn; "
                                 "strategies layer; energy model ops",
                                 "tinycnn on 4xrpi4 (input 1x3x32x32, energy model ops)"])


@pytest.mark.parametrize("where", ["command line", "ini file"])
def test_reports_are_written_to_each_path(case_file: pytest.Pytester, where: str) -> None:
    """``--edge-report`` repeats; ``edge_report`` lists paths; each suffix picks a format."""
    base = "[pytest]\nedge_models = tinycnn\nedge_strategies = layer\n"
    result = run_set(case_file, where, base, "edge_report = out/r.md out/r.json out/r.csv\n",
                     ["--edge-report=out/r.md", "--edge-report=out/r.json",
                      "--edge-report=out/r.csv"])
    assert result.ret == 0
    for suffix in ("md", "json", "csv"):
        assert (case_file.path / "out" / f"r.{suffix}").is_file()
    result.stdout.fnmatch_lines([f"edge energy report written to {case_file.path}/out/r.md"])


def test_every_option_shares_its_help_text_with_its_ini_key(pytester: pytest.Pytester) -> None:
    """``pytest --help`` lists the group, each option and each ini key with one help text."""
    result = run(pytester, "--help")
    text = " ".join(result.stdout.str().split())
    assert "edge energy: partition CNNs across edge devices:" in text
    from pytest_edgeenergy.plugin import options

    for option in options.OPTIONS:
        dest, flag = option.dest, option.flag
        if option.action == "store_true":  # a flag takes no value
            assert f"{flag} " in text and f"{flag}=" not in text
        else:
            assert f"{flag}={dest.removeprefix('edge_').upper()}" in text
        assert f"{dest} ({option.ini_type}):" in text
        assert text.count(" ".join(option.help.split())) == 2, dest


# (args, the one-line error). Every one exits with pytest's usage-error status, 4.
BAD_VALUES = [
    (["--edge-devices=0"], "--edge-devices='0' (from the command line) holds an out-of-range "
     "device count (0); expected whole numbers from 1 to 64, such as 4 or 2,4,8"),
    (["--edge-devices=-2"], "--edge-devices='-2' (from the command line) holds an out-of-range "
     "device count (-2); expected whole numbers from 1 to 64, such as 4 or 2,4,8"),
    (["--edge-devices=65"], "--edge-devices='65' (from the command line) holds an out-of-range "
     "device count (65); expected whole numbers from 1 to 64, such as 4 or 2,4,8"),
    (["--edge-devices=four"], "--edge-devices='four' (from the command line) is not a device "
     "count ('four'); expected whole numbers from 1 to 64, such as 4 or 2,4,8"),
    (["--edge-devices=2,,4"], "--edge-devices='2,,4' (from the command line) is not a device "
     "count (''); expected whole numbers from 1 to 64, such as 4 or 2,4,8"),
    (["--edge-devices="], "--edge-devices='' (from the command line) is empty; give a value or "
     "leave the option out"),
    (["--edge-models=vgg"], "--edge-models='vgg' (from the command line) names an unknown model "
     "'vgg' (did you mean 'vgg19'?); valid choices: densenet121, efficientnet_b0, mobilenet_v2, "
     "mobilenet_v3_large, mobilenet_v3_small, resnet101, resnet18, resnet50, shufflenet_v2, "
     "tinycnn, vgg16, vgg19, yolov2, yolov2_tiny, yolov8n"),
    (["--edge-models=tinycnn,"], "--edge-models='tinycnn,' (from the command line) has an "
     "empty name; expected names separated by single commas"),
    (["--edge-strategies=layer,pipeline"], "--edge-strategies='layer,pipeline' (from the "
     "command line) names an unknown strategy 'pipeline'; valid choices: layer, spatial, "
     "output-channel, input-channel, search"),
    (["--edge-energy-model=joules"], "--edge-energy-model='joules' (from the command line) "
     "names an unknown energy model 'joules'; valid choices: board, ops"),
    (["--edge-report=report.txt"], "--edge-report='report.txt' (from the command line) has an "
     "unknown report suffix '.txt'; valid suffixes: .md, .json, .csv"),
    (["--edge-device=rpi4,rpi4"], "--edge-device='rpi4,rpi4' (from the command line) names more "
     "than one device; name one device profile; use --edge-cluster for a mixed cluster"),
    (["--edge-cluster=rpi4", "--edge-devices=2"], "--edge-cluster='rpi4' (from the command "
     "line) cannot be combined with --edge-devices='2'; give either a cluster or a device "
     "count and device"),
]


@pytest.mark.parametrize(("args", "message"), BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_a_bad_value_is_a_usage_error_with_one_clear_line(
        case_file: pytest.Pytester, args: list[str], message: str) -> None:
    """Exit status 4, the message on one line, no traceback."""
    result = run(case_file, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert errors == [f"ERROR: {message}"]
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_an_unknown_device_names_the_known_ones(case_file: pytest.Pytester) -> None:
    """An unknown device (or profile file) lists the devices that exist and where."""
    result = run(case_file, "--edge-device=rpi5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: --edge-device='rpi5' (from the command line) is not a valid device profile; "
        "unknown device 'rpi5'; did you mean 'rpi4'? Known devices: esp32-s3, jetson-nano-10w, "
        "jetson-nano-5w, jetson-tx2, jetson-xavier-nx, rpi3bplus, rpi3bplus-wifi, rpi4, "
        "rpi4-wifi. Searched: *"])
    result = run(case_file, "--edge-cluster=rpi4,missing.toml")
    result.stderr.fnmatch_lines(["ERROR: --edge-cluster='rpi4,missing.toml' (from the command "
                                 "line) is not a valid cluster; device profile not found: "
                                 "missing.toml"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_a_malformed_profile_file_is_a_usage_error(case_file: pytest.Pytester) -> None:
    """A broken user profile names the file and the field."""
    (case_file.path / "profiles").mkdir()
    (case_file.path / "profiles" / "bad.toml").write_text('name = "bad"\n')
    result = run(case_file, "--edge-device-dir=profiles", "--edge-device=bad")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --edge-device='bad' (from the command line) is not a "
                                 "valid device profile; */profiles/bad.toml: missing field "
                                 "'description': expected a non-empty string"])


def test_a_missing_device_dir_is_a_usage_error(case_file: pytest.Pytester) -> None:
    """A device folder that does not exist is named, as written and resolved."""
    result = run(case_file, "--edge-device-dir=nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.errlines[0] == (
        f"ERROR: --edge-device-dir='nowhere' (from the command line) is not a folder "
        f"({case_file.path / 'nowhere'}); expected an existing folder of device profiles "
        "(*.toml)")


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("edge_devices", "0", "holds an out-of-range device count (0); expected whole numbers from "
     "1 to 64, such as 4 or 2,4,8"),
    ("edge_models", "resnet", "names an unknown model 'resnet' (did you mean 'resnet50'?); "
     "valid choices: densenet121, efficientnet_b0, mobilenet_v2, mobilenet_v3_large, "
     "mobilenet_v3_small, resnet101, resnet18, resnet50, shufflenet_v2, tinycnn, vgg16, vgg19, "
     "yolov2, yolov2_tiny, yolov8n"),
    ("edge_strategies", "tiles", "names an unknown strategy 'tiles'; valid choices: layer, "
     "spatial, output-channel, input-channel, search"),
    ("edge_energy_model", "watts", "names an unknown energy model 'watts'; valid choices: "
     "board, ops"),
    ("edge_report", "r.xml", "has an unknown report suffix '.xml'; valid suffixes: .md, .json, "
     ".csv"),
])
def test_a_bad_ini_value_says_it_came_from_the_ini_file(
        case_file: pytest.Pytester, key: str, value: str, problem: str) -> None:
    """The message names the ini key and the file instead of the option."""
    ini = case_file.makeini(f"[pytest]\n{key} = {value}\n")
    result = run(case_file)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert errors == [f"ERROR: {key}='{value}' (from the ini file {ini}) {problem}"]
