"""The plugin's options: one group, each option mirrored by an ini key with the same help text.

Every option is one entry of :data:`OPTIONS`: its name (the ini key), help text, argparse
action, ini type, the :class:`EdgeSettings` field it fills and the parser that turns its raw
value into that field's value. Adding an option is one entry there and one field in
:class:`EdgeSettings`. Precedence is command line, then ini file, then the default.
:func:`read_settings` runs every parser; a bad value raises :class:`pytest.UsageError` (exit
status 4) with one line naming the option, the value, where it came from and what would have
been valid. Names that depend on registries (models, strategies, devices, energy models) are
checked by :func:`check_names` once the registries are known.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from ..backends.pool import INIT_METHODS as GLOO_INIT_METHODS
from ..cluster import DEFAULT_DEVICE, MAX_DEVICES, Cluster
from ..energy import DEFAULT_ENERGY_MODEL, DEFAULT_SCENARIO, EnergyError, Scenario, parse_scenario
from ..errors import EdgeEnergyError
from ..meters import MeterSpecError, get_meter, meter_names
from ..plots import EXTRA, FORMATS, PlotUnavailableError, require_matplotlib
from ..profiles import load_device
from ..records.baseline import DEFAULT_BASELINE
from ..records.runs import DEFAULT_HISTORY_DIR
from ..records.thresholds import (
    DEFAULT_FAIL_ON,
    Threshold,
    ThresholdError,
    parse_thresholds,
    valid_metrics_text,
)

__all__ = [
    "DEFAULT_DEVICE_COUNTS",
    "DEFAULT_MODELS",
    "GROUP",
    "OPTIONS",
    "REPORT_SUFFIXES",
    "EdgeSettings",
    "Option",
    "Raw",
    "Source",
    "add_options",
    "build_clusters",
    "check_names",
    "check_scenario",
    "read_settings",
    "unknown_name_error",
]

GROUP = "edgeenergy"
"""The name of the option group in ``pytest --help``."""

DEFAULT_MODELS: tuple[str, ...] = ("tinycnn", "mobilenet_v2", "resnet18")
"""Models run when none are named: all four classic strategies over them take ~20 s here."""

DEFAULT_DEVICE_COUNTS: tuple[int, ...] = (4,)
"""Device counts run when neither ``--edge-devices`` nor ``--edge-cluster`` is given."""

REPORT_SUFFIXES: tuple[str, ...] = (".md", ".json", ".csv")
"""The report formats ``--edge-report`` writes, chosen by the file's suffix."""

# Help texts, shared by each option and its ini twin (as pytest-timeout does).
DEVICES_HELP = (
    "number of devices to partition each model across, or a comma-separated list of counts to "
    f"sweep, e.g. 4 or 2,4,8 (default: {','.join(map(str, DEFAULT_DEVICE_COUNTS))})"
)
DEVICE_HELP = (
    "device profile (a name or a .toml file) of the homogeneous cluster that --edge-devices "
    f"sizes (default: {DEFAULT_DEVICE})"
)
CLUSTER_HELP = (
    "a heterogeneous cluster, device 0 first, e.g. rpi4,rpi4,jetson-nano-10w or "
    "2xrpi4,jetson-nano-10w; replaces --edge-devices and --edge-device"
)
DEVICE_DIR_HELP = "a folder of user device profiles (*.toml), searched before the shipped ones"
MODELS_HELP = (
    "comma-separated models to partition, or 'all' for every registered model "
    f"(default: {','.join(DEFAULT_MODELS)})"
)
STRATEGIES_HELP = "comma-separated partitioning strategies to compare (default: all registered)"
ENERGY_MODEL_HELP = f"energy model that prices each device's work (default: {DEFAULT_ENERGY_MODEL})"
REPORT_HELP = (
    "write the comparison report to this file; the suffix picks the format "
    "(.md, .json or .csv); repeat the option for several files"
)
BASELINE_HELP = (
    "the baseline file every case is compared with when it exists; a relative path is "
    f"relative to the rootdir (default: {DEFAULT_BASELINE})"
)
FAIL_ON_HELP = (
    "fail a case whose figure grows past a threshold, METRIC:N% (relative) or METRIC:N "
    "(absolute, in the metric's unit), e.g. max_device_j:2% or comm_bytes:0; repeat the option "
    "or separate with commas; 'none' fails on nothing (default: "
    f"{', '.join(DEFAULT_FAIL_ON)})"
)
STRICT_HELP = (
    "also fail on improvements past a threshold, new cases and unused baseline entries, until "
    "the baseline is updated"
)
UPDATE_BASELINE_HELP = (
    "record the figures of the cases that ran in the baseline (others are kept, unused ones "
    "removed) instead of failing on a difference"
)
AUTOSAVE_HELP = "save this run's figures, with git commit, branch and time, in the history folder"
HISTORY_DIR_HELP = (
    "the folder --edge-autosave saves runs in; a relative path is relative to the rootdir "
    f"(default: {DEFAULT_HISTORY_DIR})"
)
SCENARIO_HELP = (
    "the conditions of the estimate as key=value pairs, e.g. workload=stream,power=sleep,"
    "network=shared; keys: workload (single, stream), fps, power (always-on, sleep), network "
    "(half-duplex, full-duplex, shared), relay (ap, direct), compute (uniform, per-kind) "
    f"(default: {DEFAULT_SCENARIO}); see docs/energy-model.md"
)
SENSITIVITY_HELP = (
    "show how robust each ranking is: the winner's margin, the profile-field factor that "
    "changes the winner, and the share of wins when every figure varies x0.5..x2"
)
SENSITIVITY_SAMPLES_HELP = (
    "joint draws per ranking for --edge-sensitivity (seeded, so runs repeat; default: "
    "64; 0 skips the joint draws)"
)
DEFAULT_SENSITIVITY_SAMPLES = 64
BENCHMARK_JSON_HELP = (
    "write the cases' figures to this file in github-action-benchmark's customSmallerIsBetter "
    "format"
)
METER_HELP = (
    "measure each partitioned inference with this power meter, above an idle baseline, and "
    "show it beside the estimate (gloo backend: every rank measures its own share on its own "
    "host): rapl, nvml, jetson, ina219, ina260, or NAME:key=value,... (docs/meters.md); an "
    "unavailable meter is reported with its reason"
)
PLOT_HELP = (
    "draw the comparisons (needs the 'plot' extra): a .svg or .png file for one picture, or a "
    "folder for one SVG per model and cluster"
)


# -- the backend (issue 13): --edge-backend and the gloo worker pool's settings ---------------
BACKEND_NAMES: tuple[str, ...] = ("local", "gloo")
"""What ``--edge-backend`` accepts."""
BACKEND_HELP = (
    "what runs each case's plan: local (every device in this process) or gloo (one process "
    "per device, torch.distributed; started once per session and cluster size) "
    "(default: local)"
)
GLOO_INIT_HELP = (
    "how the gloo backend starts its ranks: spawn (processes on this host, 127.0.0.1) or env "
    "(this process is rank 0; the other ranks run 'python -m pytest_edgeenergy worker' on "
    "other hosts and meet it through MASTER_ADDR, MASTER_PORT and WORLD_SIZE) (default: spawn)"
)
GLOO_TIMEOUT_HELP = "seconds one gloo run may take before its ranks are stopped (default: 120)"
GLOO_JOIN_TIMEOUT_HELP = (
    "seconds the gloo workers may take to start (spawn) or to join rank 0 (env) (default: 60)"
)
GLOO_PORT_HELP = (
    "the gloo rendezvous port: rank 0's port on 127.0.0.1 (spawn; default: a free one) or "
    "MASTER_PORT (env)"
)
GLOO_IFNAME_HELP = "the network interface gloo binds to on this host, e.g. eth0 (env)"
TRACE_DIR_HELP = (
    "save every gloo case's measured trace (counts and timeline) as <case>.trace.json in this "
    "folder, for 'python -m pytest_edgeenergy calibrate --from-trace'"
)


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a setting's value came from: ``command line``, ``ini file <path>`` or ``default``."""

    kind: str  # "command line", "ini file" or "default"
    option: str  # the spelling the user wrote: "--edge-devices" or "edge_devices"
    path: str = ""  # the ini file, for kind "ini file"

    def __str__(self) -> str:
        return f"ini file {self.path}" if self.path else self.kind


@dataclasses.dataclass(frozen=True)
class EdgeSettings:
    """Every option of the plugin, resolved (command line > ini > default) and checked.

    ``cluster`` (a spec such as ``"rpi4,jetson-nano-10w"``), when set, replaces the
    homogeneous clusters of ``device_counts`` devices of ``device``; ``models`` and
    ``strategies`` are ``None`` when the user named none (the default set, or every
    registered strategy).
    """

    device_counts: tuple[int, ...]
    device: str
    cluster: str | None
    device_dirs: tuple[Path, ...]
    models: tuple[str, ...] | None
    strategies: tuple[str, ...] | None
    energy_model: str
    reports: tuple[Path, ...]
    baseline: Path = Path(DEFAULT_BASELINE)
    fail_on: tuple[Threshold, ...] = ()
    strict: bool = False
    update_baseline: bool = False
    autosave: bool = False
    history_dir: Path = Path(DEFAULT_HISTORY_DIR)
    benchmark_json: Path | None = None
    meter: str | None = None
    plot: Path | None = None
    scenario: Scenario = DEFAULT_SCENARIO
    sensitivity: bool = False
    sensitivity_samples: int = DEFAULT_SENSITIVITY_SAMPLES
    backend: str = "local"
    gloo_init: str = "spawn"
    gloo_timeout_s: float = 120.0
    gloo_join_timeout_s: float = 60.0
    gloo_port: int | None = None
    gloo_ifname: str | None = None
    trace_dir: Path | None = None
    sources: dict[str, Source] = dataclasses.field(default_factory=dict, compare=False)

    def source(self, dest: str) -> Source:
        """Where setting ``dest`` (e.g. ``"edge_models"``) came from."""
        return self.sources.get(dest, Source("default", "--" + dest.replace("_", "-")))


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


@dataclasses.dataclass(frozen=True)
class Raw:
    """An option's value as given (``None``: not given), where it came from, and the config
    (for paths, which are relative to where they were written)."""

    value: Any
    source: Source
    config: pytest.Config

    def text(self) -> str | None:
        """The value as stripped text (``None`` when not given); empty text is an error."""
        if self.value is None:
            return None
        text = str(self.value).strip()
        if not text:
            raise self.error("is empty", "give a value or leave the option out")
        return text

    def error(self, problem: str, valid: str, value: object = None) -> pytest.UsageError:
        """The usage error for this option: ``--opt='value' (from the ...) problem; valid``."""
        return _error(self.source, self.value if value is None else value, problem, valid)


def _error(source: Source, value: object, problem: str, valid: str) -> pytest.UsageError:
    shown = value if isinstance(value, str) else ",".join(map(str, value)) if isinstance(
        value, list) else str(value)
    return pytest.UsageError(
        f"{source.option}={shown!r} (from the {source}) {problem}; {valid}")


def _raw(config: pytest.Config, option: Option) -> Raw:
    """The value of ``option`` by precedence, and where it came from (None: not set)."""
    dest = option.dest
    cli = config.getoption(dest)
    if cli is not None:
        return Raw(cli, Source("command line", _flag(dest)), config)
    where = str(config.inipath) if config.inipath is not None else "configuration"
    source = Source("ini file", dest, where)
    try:
        with warnings.catch_warnings():  # a TOML array for a string key: refused below
            warnings.simplefilter("ignore", pytest.PytestDeprecationWarning)
            ini = config.getini(dest)
    except (ValueError, pytest.UsageError) as exc:  # pytest names neither key nor file
        found = re.search(r"invalid truth value (.*)", str(exc))
        value = found.group(1).strip("'\"") if found else str(exc)
        raise _error(source, value, "is not a boolean",
                     "expected true or false (also yes/no, on/off, 1/0)") from None
    if option.takes_list and isinstance(ini, list):
        # lines of an ini value, or a TOML array: the comma-separated list they stand for
        ini = ",".join(str(v).strip() for v in ini) if ini else None
    elif option.ini_type == "string" and isinstance(ini, list | tuple):
        raise _error(source, [str(v) for v in ini], "is a list",
                     "give one value (a TOML string, not an array)")
    if ini is not None and ini != []:
        return Raw(ini, source, config)
    return Raw(None, Source("default", _flag(dest)), config)


# -- the parsers: a Raw value in, the setting out -------------------------------------------

def _optional_text(raw: Raw) -> str | None:
    return raw.text()


def _names(raw: Raw) -> tuple[str, ...] | None:
    text = raw.text()
    if text is None:
        return None
    items = tuple(item.strip() for item in text.split(","))
    if any(not item for item in items):
        raise raw.error("has an empty name", "expected names separated by single commas",
                        text)
    # Keep the user's order, drop repeats: a repeated name would only repeat the same case.
    return tuple(dict.fromkeys(items))


def _device_counts(raw: Raw) -> tuple[int, ...]:
    text = raw.text()
    if text is None:
        return DEFAULT_DEVICE_COUNTS
    valid = f"expected whole numbers from 1 to {MAX_DEVICES}, such as 4 or 2,4,8"
    counts: list[int] = []
    for item in text.split(","):
        item = item.strip()
        if not item.lstrip("+-").isdigit():
            raise raw.error(f"is not a device count ('{item}')", valid, text)
        count = int(item)
        if not 1 <= count <= MAX_DEVICES:
            raise raw.error(f"holds an out-of-range device count ({count})", valid, text)
        counts.append(count)
    return tuple(dict.fromkeys(counts))


def _device(raw: Raw) -> str:
    device = raw.text()
    if device is not None and "," in device:
        raise raw.error("names more than one device",
                        "name one device profile; use --edge-cluster for a mixed cluster", device)
    return device or DEFAULT_DEVICE


def _energy_model(raw: Raw) -> str:
    return raw.text() or DEFAULT_ENERGY_MODEL


def _paths(raw: Raw) -> tuple[tuple[str, Path], ...]:
    """(as written, resolved) paths: command-line ones relative to the invocation folder,
    ini ones relative to the ini file."""
    if raw.value is None:
        return ()
    config = raw.config
    base = (config.invocation_params.dir if raw.source.kind == "command line"
            else (config.inipath.parent if config.inipath is not None else config.rootpath))
    items = raw.value if isinstance(raw.value, list) else [raw.value]
    return tuple((str(item), (base / Path(str(item))).resolve()) for item in items)


def _device_dirs(raw: Raw) -> tuple[Path, ...]:
    dirs = _paths(raw)
    for written, folder in dirs:
        if not folder.is_dir():
            raise raw.error(f"is not a folder ({folder})",
                            "expected an existing folder of device profiles (*.toml)", written)
    return tuple(folder for _, folder in dirs)


def _file_to_write(raw: Raw, written: str, path: Path, valid: str) -> None:
    """Refuse a path that names a folder, or whose folder is a file."""
    if path.is_dir():
        raise raw.error("is a folder", valid, written)
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise raw.error(f"cannot be written: {parent} is a file, not a folder", valid,
                                written)
            break


def _reports(raw: Raw) -> tuple[Path, ...]:
    paths = _paths(raw)
    for written, path in paths:
        valid = "expected a file name ending in .md, .json or .csv"
        _file_to_write(raw, written, path, valid)
        if path.suffix.lower() not in REPORT_SUFFIXES:
            raise raw.error(f"has an unknown report suffix '{path.suffix}'",
                            f"valid suffixes: {', '.join(REPORT_SUFFIXES)}", written)
    return tuple(dict.fromkeys(path for _, path in paths))


def _project_path(raw: Raw, default: str) -> Path:
    """A path that belongs to the project (baseline, history): relative to the rootdir from
    the command line and by default, relative to the ini file from the ini file."""
    text = raw.text()
    config = raw.config
    base = (config.inipath.parent if raw.source.kind == "ini file" and config.inipath is not None
            else config.rootpath)
    return (base / Path(text if text is not None else default)).resolve()


def _baseline(raw: Raw) -> Path:
    path = _project_path(raw, DEFAULT_BASELINE)
    _file_to_write(raw, str(path), path,
                   "expected the baseline's file name, such as " + DEFAULT_BASELINE)
    return path


def _history_dir(raw: Raw) -> Path:
    path = _project_path(raw, DEFAULT_HISTORY_DIR)
    if path.exists() and not path.is_dir():
        raise raw.error("is not a folder",
                        "expected a folder to save runs in (it is created when missing)",
                        str(path))
    return path


def _benchmark_json(raw: Raw) -> Path | None:
    text = raw.text()
    if text is None:
        return None
    (_, path), = _paths(dataclasses.replace(raw, value=text))
    _file_to_write(raw, text, path, "expected a file name such as edge-benchmark.json")
    return path


def _meter(raw: Raw) -> str | None:
    spec = raw.text()
    if spec is not None:
        try:
            get_meter(spec)  # a known name with valid parameters; availability is not checked
        except MeterSpecError as exc:
            raise raw.error(f"is not a meter ({exc})",
                            f"meters: {', '.join(meter_names())}", spec) from None
    return spec


def _plot(raw: Raw) -> Path | None:
    text = raw.text()
    if text is None:
        return None
    try:
        require_matplotlib()
    except PlotUnavailableError:
        raise raw.error("needs matplotlib, which is not installed", f"install it with {EXTRA}",
                        text) from None
    (_, path), = _paths(dataclasses.replace(raw, value=text))
    suffix = path.suffix.lower()
    if suffix and suffix not in FORMATS:
        raise raw.error(f"has an unknown picture suffix '{path.suffix}'",
                        f"expected {' or '.join(FORMATS)} for one picture, or a folder", text)
    if suffix and path.is_dir():
        raise raw.error("is a folder", f"expected a file name ending in {' or '.join(FORMATS)}",
                        text)
    if not suffix and path.exists() and not path.is_dir():
        raise raw.error("is a file without a picture suffix",
                        f"expected a folder, or a file ending in {' or '.join(FORMATS)}", text)
    return path


def _thresholds(raw: Raw) -> tuple[Threshold, ...]:
    value = raw.value
    items = (list(DEFAULT_FAIL_ON) if value is None
             else [str(v) for v in value] if isinstance(value, list) else [str(value)])
    try:
        return parse_thresholds(items)
    except ThresholdError as exc:
        raise raw.error(str(exc),
                        "expected METRIC:N% (relative growth) or METRIC:N (absolute growth, in "
                        "the metric's unit), N a number of 0 or more, e.g. max_device_j:2% or "
                        f"comm_bytes:0, or 'none'; valid metrics: {valid_metrics_text()}",
                        ",".join(items)) from None


def _flag_value(raw: Raw) -> bool:
    return bool(raw.value)


def _scenario(raw: Raw) -> Scenario:
    text = raw.text()
    if text is None:
        return DEFAULT_SCENARIO
    try:
        return parse_scenario(text)
    except EnergyError as exc:
        raise raw.error(f"is not a valid scenario: {exc}",
                        "expected key=value pairs such as workload=stream,power=sleep,"
                        "network=shared", text) from None


def _sample_count(raw: Raw) -> int:
    text = raw.text()
    if text is None:
        return DEFAULT_SENSITIVITY_SAMPLES
    if not text.isdigit():
        raise raw.error("is not a sample count", "expected a whole number, 0 or more", text)
    return int(text)


def _choice(choices: tuple[str, ...], default: str) -> Callable[[Raw], str]:
    def parse(raw: Raw) -> str:
        text = raw.text()
        if text is None:
            return default
        if text not in choices:
            raise raw.error("is not one of the choices", f"valid choices: {', '.join(choices)}",
                            text)
        return text
    return parse


def _seconds(default: float) -> Callable[[Raw], float]:
    def parse(raw: Raw) -> float:
        text = raw.text()
        if text is None:
            return default
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            raise raw.error("is not a positive number of seconds", "e.g. 30 or 2.5", text)
        return value
    return parse


def _port(raw: Raw) -> int | None:
    text = raw.text()
    if text is None:
        return None
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise raw.error("is not a TCP port", "expected a whole number from 1 to 65535", text)
    return int(text)


def _trace_dir(raw: Raw) -> Path | None:
    text = raw.text()
    if text is None:
        return None
    (_, path), = _paths(dataclasses.replace(raw, value=text))
    if path.exists() and not path.is_dir():
        raise raw.error("is not a folder",
                        "expected a folder to save traces in (it is created when missing)", text)
    return path


@dataclasses.dataclass(frozen=True)
class Option:
    """One option: ``--edge-x`` on the command line and ``edge_x`` in the ini file.

    ``field`` is the :class:`EdgeSettings` field ``parse`` fills; ``action`` is argparse's
    (``store``, ``append`` or ``store_true``); ``ini_type`` is pytest's ``addini`` type.
    """

    dest: str
    help: str
    field: str
    parse: Callable[[Raw], Any]
    action: str = "store"
    ini_type: str = "string"
    #: a comma-separated list, also written one item a line or as a TOML array in the ini file
    takes_list: bool = False

    def __post_init__(self) -> None:
        if self.takes_list:  # read as lines (or an array), then joined with commas
            object.__setattr__(self, "ini_type", "linelist")

    @property
    def flag(self) -> str:
        """The command-line spelling, e.g. ``--edge-devices``."""
        return _flag(self.dest)


OPTIONS: tuple[Option, ...] = (
    Option("edge_devices", DEVICES_HELP, "device_counts", _device_counts, takes_list=True),
    Option("edge_device", DEVICE_HELP, "device", _device),
    Option("edge_cluster", CLUSTER_HELP, "cluster", _optional_text, takes_list=True),
    Option("edge_device_dir", DEVICE_DIR_HELP, "device_dirs", _device_dirs, "append", "paths"),
    Option("edge_models", MODELS_HELP, "models", _names, takes_list=True),
    Option("edge_strategies", STRATEGIES_HELP, "strategies", _names, takes_list=True),
    Option("edge_energy_model", ENERGY_MODEL_HELP, "energy_model", _energy_model),
    Option("edge_report", REPORT_HELP, "reports", _reports, "append", "args"),
    Option("edge_baseline", BASELINE_HELP, "baseline", _baseline),
    Option("edge_fail_on", FAIL_ON_HELP, "fail_on", _thresholds, "append", "linelist"),
    Option("edge_strict", STRICT_HELP, "strict", _flag_value, "store_true", "bool"),
    Option("edge_update_baseline", UPDATE_BASELINE_HELP, "update_baseline", _flag_value,
           "store_true", "bool"),
    Option("edge_autosave", AUTOSAVE_HELP, "autosave", _flag_value, "store_true", "bool"),
    Option("edge_history_dir", HISTORY_DIR_HELP, "history_dir", _history_dir),
    Option("edge_benchmark_json", BENCHMARK_JSON_HELP, "benchmark_json", _benchmark_json),
    Option("edge_meter", METER_HELP, "meter", _meter),
    Option("edge_plot", PLOT_HELP, "plot", _plot),
    Option("edge_scenario", SCENARIO_HELP, "scenario", _scenario),
    Option("edge_sensitivity", SENSITIVITY_HELP, "sensitivity", _flag_value, "store_true",
           "bool"),
    Option("edge_sensitivity_samples", SENSITIVITY_SAMPLES_HELP, "sensitivity_samples",
           _sample_count),
    Option("edge_backend", BACKEND_HELP, "backend", _choice(BACKEND_NAMES, "local")),
    Option("edge_gloo_init", GLOO_INIT_HELP, "gloo_init", _choice(GLOO_INIT_METHODS, "spawn")),
    Option("edge_gloo_timeout", GLOO_TIMEOUT_HELP, "gloo_timeout_s", _seconds(120.0)),
    Option("edge_gloo_join_timeout", GLOO_JOIN_TIMEOUT_HELP, "gloo_join_timeout_s",
           _seconds(60.0)),
    Option("edge_gloo_port", GLOO_PORT_HELP, "gloo_port", _port),
    Option("edge_gloo_ifname", GLOO_IFNAME_HELP, "gloo_ifname", _optional_text),
    Option("edge_trace_dir", TRACE_DIR_HELP, "trace_dir", _trace_dir),
)
"""Every option of the plugin, in ``pytest --help`` order."""


def add_options(parser: pytest.Parser) -> None:
    """Register every option in the ``edgeenergy`` group and its ini twin."""
    group = parser.getgroup(GROUP, "edge energy: partition CNNs across edge devices")
    for option in OPTIONS:
        # argparse expands %-formats in option help (not in ini help): "2%" is written "2%%".
        option_help = option.help.replace("%", "%%")
        # default None, so an absent flag lets the ini key decide
        if option.action == "store_true":
            group.addoption(option.flag, dest=option.dest, action=option.action, default=None,
                            help=option_help)
        else:
            group.addoption(option.flag, dest=option.dest, action=option.action, default=None,
                            metavar=option.dest.removeprefix("edge_").upper(), help=option_help)
        parser.addini(option.dest, option.help, type=option.ini_type,  # type: ignore[arg-type]
                      default=None)


def _check_cluster(raws: dict[str, Raw]) -> None:
    """A cluster replaces a device count and device: both at the same level is ambiguous (a
    command-line cluster overrides an ini device count, as command line overrides ini)."""
    cluster = raws["edge_cluster"]
    if cluster.value is None:
        return
    for other in ("edge_devices", "edge_device"):
        raw = raws[other]
        if raw.value is not None and raw.source.kind == cluster.source.kind:
            raise cluster.error(f"cannot be combined with {raw.source.option}={raw.text()!r}",
                                "give either a cluster or a device count and device",
                                cluster.text())


def read_settings(config: pytest.Config) -> EdgeSettings:
    """Resolve every option (command line > ini > default) and check what needs no registry."""
    raws = {option.dest: _raw(config, option) for option in OPTIONS}
    _check_cluster(raws)
    values = {option.field: option.parse(raws[option.dest]) for option in OPTIONS}
    sources = {dest: raw.source for dest, raw in raws.items()}
    return EdgeSettings(**values, sources=sources)


def unknown_name_error(settings: EdgeSettings, dest: str, kind: str, name: str,
                       known: Sequence[str]) -> pytest.UsageError:
    """The usage error for an unknown model, strategy, device or energy model."""
    source = settings.source(dest)
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    value = {"edge_models": "models", "edge_strategies": "strategies"}.get(dest)
    shown = ",".join(getattr(settings, value) or ()) if value else name
    return pytest.UsageError(
        f"{source.option}={shown!r} (from the {source}) names an unknown {kind} "
        f"'{name}'{hint}; valid choices: {', '.join(known) or 'none'}")


def check_names(settings: EdgeSettings, dest: str, kind: str, names: Iterable[str],
                known: Sequence[str]) -> None:
    """Raise the usage error for the first of ``names`` not in ``known``."""
    for name in names:
        if name not in known:
            raise unknown_name_error(settings, dest, kind, name, known)


def check_scenario(settings: EdgeSettings, clusters: Sequence[Cluster]) -> None:
    """A scenario that needs optional profile figures (``power=sleep``) gets them from every
    device, or the run stops with a usage error naming the device and the fields."""
    if settings.scenario.power != "sleep":
        return
    from ..energy.power import check_sleep_fields

    for cluster in clusters:
        for index, profile in enumerate(cluster):
            try:
                check_sleep_fields(profile, index)
            except EnergyError as exc:
                raise _error(settings.source("edge_scenario"), str(settings.scenario),
                             f"cannot run on cluster {cluster.signature}", str(exc)) from None


def build_clusters(settings: EdgeSettings, search_dirs: Sequence[Path]) -> tuple[Cluster, ...]:
    """The clusters to run, each device profile loaded; a bad one is a usage error."""
    if settings.cluster is not None:
        try:
            return (Cluster.parse(settings.cluster, search_dirs),)
        except EdgeEnergyError as exc:
            raise _error(settings.source("edge_cluster"), settings.cluster,
                         "is not a valid cluster", str(exc)) from None
    try:
        profile = load_device(settings.device, search_dirs)
    except EdgeEnergyError as exc:
        raise _error(settings.source("edge_device"), settings.device,
                     "is not a valid device profile", str(exc)) from None
    return tuple(Cluster.homogeneous(profile, n) for n in settings.device_counts)
