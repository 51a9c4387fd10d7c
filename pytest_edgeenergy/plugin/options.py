"""The plugin's options: one group, each option mirrored by an ini key with the same help text.

Precedence is command line, then ini file, then the default. :func:`read_settings` turns the
parsed options into one immutable :class:`EdgeSettings`; every bad value raises
:class:`pytest.UsageError` with one line naming the option, the value, where it came from and
what would have been valid. Names that depend on registries (models, strategies, devices,
energy models) are checked by :func:`check_names` once the registries are known.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from ..cluster import DEFAULT_DEVICE, MAX_DEVICES, Cluster
from ..errors import EdgeEnergyError
from ..profiles import load_device
from .baseline import DEFAULT_BASELINE
from .runs import DEFAULT_HISTORY_DIR
from .thresholds import (
    DEFAULT_FAIL_ON,
    Threshold,
    ThresholdError,
    parse_thresholds,
    valid_metrics_text,
)

__all__ = [
    "DEFAULT_DEVICE_COUNTS",
    "DEFAULT_ENERGY_MODEL",
    "DEFAULT_MODELS",
    "GROUP",
    "REPORT_SUFFIXES",
    "EdgeSettings",
    "Source",
    "add_options",
    "build_clusters",
    "check_names",
    "read_settings",
    "unknown_name_error",
]

GROUP = "edgeenergy"
"""The name of the option group in ``pytest --help``."""

DEFAULT_MODELS: tuple[str, ...] = ("tinycnn", "mobilenet_v2", "resnet18")
"""Models run when none are named: all four classic strategies over them take ~20 s here."""

DEFAULT_DEVICE_COUNTS: tuple[int, ...] = (4,)
"""Device counts run when neither ``--edge-devices`` nor ``--edge-cluster`` is given."""

DEFAULT_ENERGY_MODEL = "board"
"""The energy model used when none is named (the board-level model of docs/energy-model.md)."""

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
BENCHMARK_JSON_HELP = (
    "write the cases' figures to this file in github-action-benchmark's customSmallerIsBetter "
    "format"
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
    sources: dict[str, Source] = dataclasses.field(default_factory=dict, compare=False)

    def source(self, dest: str) -> Source:
        """Where setting ``dest`` (e.g. ``"edge_models"``) came from."""
        return self.sources.get(dest, Source("default", "--" + dest.replace("_", "-")))


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


# dest, help, action, ini type. The ini key is the dest itself.
_OPTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("edge_devices", DEVICES_HELP, "store", "string"),
    ("edge_device", DEVICE_HELP, "store", "string"),
    ("edge_cluster", CLUSTER_HELP, "store", "string"),
    ("edge_device_dir", DEVICE_DIR_HELP, "append", "paths"),
    ("edge_models", MODELS_HELP, "store", "string"),
    ("edge_strategies", STRATEGIES_HELP, "store", "string"),
    ("edge_energy_model", ENERGY_MODEL_HELP, "store", "string"),
    ("edge_report", REPORT_HELP, "append", "args"),
    ("edge_baseline", BASELINE_HELP, "store", "string"),
    ("edge_fail_on", FAIL_ON_HELP, "append", "linelist"),
    ("edge_strict", STRICT_HELP, "store_true", "bool"),
    ("edge_update_baseline", UPDATE_BASELINE_HELP, "store_true", "bool"),
    ("edge_autosave", AUTOSAVE_HELP, "store_true", "bool"),
    ("edge_history_dir", HISTORY_DIR_HELP, "store", "string"),
    ("edge_benchmark_json", BENCHMARK_JSON_HELP, "store", "string"),
)


def add_options(parser: pytest.Parser) -> None:
    """Register every option in the ``edgeenergy`` group and its ini twin."""
    group = parser.getgroup(GROUP, "edge energy: partition CNNs across edge devices")
    for dest, help_text, action, ini_type in _OPTIONS:
        # argparse expands %-formats in option help (not in ini help): "2%" is written "2%%".
        option_help = help_text.replace("%", "%%")
        if action == "store_true":  # a flag: None when absent, so the ini key can decide
            group.addoption(_flag(dest), dest=dest, action=action, default=None,
                            help=option_help)
        else:
            metavar = dest.removeprefix("edge_").upper()
            group.addoption(_flag(dest), dest=dest, action=action, default=None,
                            metavar=metavar, help=option_help)
        parser.addini(dest, help_text, type=ini_type, default=None)  # type: ignore[arg-type]


def _raw(config: pytest.Config, dest: str) -> tuple[object, Source]:
    """The value of ``dest`` by precedence, and where it came from (None: not set)."""
    cli = config.getoption(dest)
    if cli is not None:
        return cli, Source("command line", _flag(dest))
    ini = config.getini(dest)
    if ini is not None and ini != []:
        where = str(config.inipath) if config.inipath is not None else "configuration"
        return ini, Source("ini file", dest, where)
    return None, Source("default", _flag(dest))


def _text(config: pytest.Config, dest: str) -> tuple[str | None, Source]:
    value, source = _raw(config, dest)
    if value is None:
        return None, source
    text = str(value).strip()
    if not text:
        raise _error(source, value, "is empty", "give a value or leave the option out")
    return text, source


def _error(source: Source, value: object, problem: str, valid: str) -> pytest.UsageError:
    shown = value if isinstance(value, str) else ",".join(map(str, value)) if isinstance(
        value, list) else str(value)
    return pytest.UsageError(
        f"{source.option}={shown!r} (from the {source}) {problem}; {valid}")


def _names(text: str, source: Source) -> tuple[str, ...]:
    items = tuple(item.strip() for item in text.split(","))
    if any(not item for item in items):
        raise _error(source, text, "has an empty name",
                     "expected names separated by single commas")
    # Keep the user's order, drop repeats: a repeated name would only repeat the same case.
    return tuple(dict.fromkeys(items))


def _device_counts(text: str, source: Source) -> tuple[int, ...]:
    valid = f"expected whole numbers from 1 to {MAX_DEVICES}, such as 4 or 2,4,8"
    counts: list[int] = []
    for item in text.split(","):
        item = item.strip()
        if not item.lstrip("+-").isdigit():
            raise _error(source, text, f"is not a device count ('{item}')", valid)
        count = int(item)
        if not 1 <= count <= MAX_DEVICES:
            raise _error(source, text, f"holds an out-of-range device count ({count})", valid)
        counts.append(count)
    return tuple(dict.fromkeys(counts))


def _paths(config: pytest.Config, source: Source,
           value: object) -> tuple[tuple[str, Path], ...]:
    """(as written, resolved) paths: command-line ones relative to the invocation folder,
    ini ones relative to the ini file."""
    base = (config.invocation_params.dir if source.kind == "command line"
            else (config.inipath.parent if config.inipath is not None else config.rootpath))
    raw = value if isinstance(value, list) else [value]
    return tuple((str(item), (base / Path(str(item))).resolve()) for item in raw)


def _project_path(config: pytest.Config, dest: str, default: str) -> tuple[Path, Source]:
    """A path that belongs to the project (baseline, history): relative to the rootdir from
    the command line and by default, relative to the ini file from the ini file."""
    text, source = _text(config, dest)
    base = (config.inipath.parent if source.kind == "ini file" and config.inipath is not None
            else config.rootpath)
    path = (base / Path(text if text is not None else default)).resolve()
    return path, source


def _flag_value(config: pytest.Config, dest: str) -> tuple[bool, Source]:
    value, source = _raw(config, dest)
    return bool(value), source


def _thresholds(config: pytest.Config) -> tuple[tuple[Threshold, ...], Source]:
    value, source = _raw(config, "edge_fail_on")
    items = (list(DEFAULT_FAIL_ON) if value is None
             else [str(v) for v in value] if isinstance(value, list) else [str(value)])
    try:
        return parse_thresholds(items), source
    except ThresholdError as exc:
        raise _error(source, ",".join(items), str(exc),
                     "expected METRIC:N% (relative growth) or METRIC:N (absolute growth, in the "
                     "metric's unit), N a number of 0 or more, e.g. max_device_j:2% or "
                     f"comm_bytes:0, or 'none'; valid metrics: {valid_metrics_text()}") from None


def read_settings(config: pytest.Config) -> EdgeSettings:
    """Resolve every option (command line > ini > default) and check what needs no registry."""
    sources: dict[str, Source] = {}

    cluster, sources["edge_cluster"] = _text(config, "edge_cluster")
    devices, sources["edge_devices"] = _text(config, "edge_devices")
    device, sources["edge_device"] = _text(config, "edge_device")
    if cluster is not None:
        for other, value in (("edge_devices", devices), ("edge_device", device)):
            # Only a conflict at the same level is ambiguous: a command-line cluster
            # overrides an ini device count, as command line overrides ini everywhere.
            if value is not None and sources[other].kind == sources["edge_cluster"].kind:
                raise _error(sources["edge_cluster"], cluster,
                             f"cannot be combined with {sources[other].option}={value!r}",
                             "give either a cluster or a device count and device")
    counts = (DEFAULT_DEVICE_COUNTS if devices is None
              else _device_counts(devices, sources["edge_devices"]))
    if device is not None and "," in device:
        raise _error(sources["edge_device"], device, "names more than one device",
                     "name one device profile; use --edge-cluster for a mixed cluster")

    dir_value, sources["edge_device_dir"] = _raw(config, "edge_device_dir")
    dir_items = (() if dir_value is None
                 else _paths(config, sources["edge_device_dir"], dir_value))
    for written, folder in dir_items:
        if not folder.is_dir():
            raise _error(sources["edge_device_dir"], written, f"is not a folder ({folder})",
                         "expected an existing folder of device profiles (*.toml)")
    dirs = tuple(folder for _, folder in dir_items)

    models_text, sources["edge_models"] = _text(config, "edge_models")
    models = None if models_text is None else _names(models_text, sources["edge_models"])
    strategies_text, sources["edge_strategies"] = _text(config, "edge_strategies")
    strategies = (None if strategies_text is None
                  else _names(strategies_text, sources["edge_strategies"]))
    energy, sources["edge_energy_model"] = _text(config, "edge_energy_model")

    report_value, sources["edge_report"] = _raw(config, "edge_report")
    report_items = (() if report_value is None
                    else _paths(config, sources["edge_report"], report_value))
    for written, path in report_items:
        if path.suffix.lower() not in REPORT_SUFFIXES:
            raise _error(sources["edge_report"], written,
                         f"has an unknown report suffix '{path.suffix}'",
                         f"valid suffixes: {', '.join(REPORT_SUFFIXES)}")
        if path.is_dir():
            raise _error(sources["edge_report"], written, "is a folder",
                         "expected a file name ending in .md, .json or .csv")
    reports = tuple(path for _, path in report_items)

    baseline, sources["edge_baseline"] = _project_path(config, "edge_baseline", DEFAULT_BASELINE)
    if baseline.is_dir():
        raise _error(sources["edge_baseline"], str(baseline), "is a folder",
                     "expected the baseline's file name, such as " + DEFAULT_BASELINE)
    fail_on, sources["edge_fail_on"] = _thresholds(config)
    strict, sources["edge_strict"] = _flag_value(config, "edge_strict")
    update, sources["edge_update_baseline"] = _flag_value(config, "edge_update_baseline")
    autosave, sources["edge_autosave"] = _flag_value(config, "edge_autosave")
    history, sources["edge_history_dir"] = _project_path(config, "edge_history_dir",
                                                         DEFAULT_HISTORY_DIR)
    if history.exists() and not history.is_dir():
        raise _error(sources["edge_history_dir"], str(history), "is not a folder",
                     "expected a folder to save runs in (it is created when missing)")
    bench_text, sources["edge_benchmark_json"] = _text(config, "edge_benchmark_json")
    bench = None
    if bench_text is not None:
        (_, bench), = _paths(config, sources["edge_benchmark_json"], bench_text)
        if bench.is_dir():
            raise _error(sources["edge_benchmark_json"], bench_text, "is a folder",
                         "expected a file name such as edge-benchmark.json")

    return EdgeSettings(
        device_counts=counts, device=device or DEFAULT_DEVICE, cluster=cluster,
        device_dirs=dirs, models=models, strategies=strategies,
        energy_model=energy or DEFAULT_ENERGY_MODEL, reports=tuple(dict.fromkeys(reports)),
        baseline=baseline, fail_on=fail_on, strict=strict, update_baseline=update,
        autosave=autosave, history_dir=history, benchmark_json=bench, sources=sources)


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
