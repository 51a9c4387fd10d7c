"""The one owner of a pytest session's edge state: :class:`EdgeSession`.

As syrupy's ``SnapshotSession`` and pytest-benchmark's ``BenchmarkSession`` do, every hook
in :mod:`pytest_edgeenergy.plugin` is one to three lines over this object, which lives in
``config.stash[SESSION_KEY]``: it holds the settings, the registries, the records and the
selection, and :meth:`EdgeSession.finish` compares the run with the baseline (or updates
it), writes every file and returns the exit status. What pytest does not need lives in
:mod:`pytest_edgeenergy.records`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

from ..cluster import Cluster
from ..energy import list_energy_models
from ..equivalence import ReferenceCache
from ..errors import EdgeEnergyError, PartitionError
from ..graph.onnx_import import OnnxModel, is_onnx_path, load_onnx
from ..meters.metering import Metering
from ..plots import PicturesSection, write_report_plots
from ..records.baseline import Baseline, BaselineError, Entry, function_id, load_baseline
from ..records.ci import append_step_summary, write_benchmark_json
from ..records.report import Report, build_report, write_reports
from ..records.results import CaseResult, ResultCollector
from ..records.runs import git_info, save_run
from ..records.selection import Selection
from ..records.tracking import BaselineOutcome, display_path, session_outcome
from ..records.written import Written, reason
from .options import (
    DEFAULT_MODELS,
    EdgeSettings,
    build_clusters,
    check_names,
    check_scenario,
    read_settings,
)
from .registry import (
    DefaultSources,
    EdgeRegistry,
    EntryPoints,
    collect_registry,
    hook_plugins,
    load_entry_points,
)

__all__ = ["ALL", "EDGE_ARGNAMES", "SESSION_KEY", "EdgeSession", "SessionEnd", "edge_session",
           "is_edge_test", "is_worker"]

ALL = "all"
"""The word that names every registered model or strategy in ``--edge-models``."""

EDGE_ARGNAMES = ("edge_model", "edge_strategy", "edge_cluster")
"""The fixtures the plugin parametrises, in the order their ids are joined (``edge_run``
uses all three)."""

WORKEROUTPUT_KEY = "pytest_edgeenergy_cases"
"""The key of a pytest-xdist worker's records in ``workeroutput``."""

STREAM_KEY = "pytest_edgeenergy_cases"
"""The attribute of a test report that carries the records its test made, from a
pytest-xdist worker to the controller as each test ends (so a worker that crashes later
loses none of them)."""

MEASURED_KEY = "pytest_edgeenergy_measured"
"""The key of a worker's measured rows (``--edge-meter``)."""

SELECTION_KEY = "pytest_edgeenergy_selection"
"""The key of a worker's :class:`~pytest_edgeenergy.records.selection.Selection`."""

INTERRUPTED_UPDATE = "the session was interrupted: the edge baseline was not updated"


def is_edge_test(item: pytest.Item) -> bool:
    """Whether a test item is an edge case: it uses one of the plugin's case fixtures
    (``edge_run`` uses them all), so it may record a case and is marked ``edge``."""
    return any(name in getattr(item, "fixturenames", ()) for name in EDGE_ARGNAMES)


def is_worker(config: pytest.Config) -> bool:
    """Whether this process is a pytest-xdist worker."""
    return hasattr(config, "workerinput")


class Located(Protocol):
    """A collection node: what tells which conftest files apply."""

    @property
    def path(self) -> Path:
        """The file the node was collected from."""
        ...

    @property
    def session(self) -> pytest.Session:
        """The session the node belongs to."""
        ...


@dataclasses.dataclass(frozen=True)
class SessionEnd:
    """What the end of the session produced: the report, the baseline outcome, the files."""

    report: Report
    outcome: BaselineOutcome
    written: tuple[Written, ...]
    update_interrupted: bool = False

    @property
    def failed(self) -> bool:
        """Whether the run fails for it: a file not written, a failed case, a regression."""
        return (self.update_interrupted or any(not w.ok for w in self.written)
                or bool(self.report.failures) or self.outcome.failed_run)

    def lines(self) -> list[tuple[str, bool]]:
        """(line, is bad) for the terminal summary; empty when there is nothing to say."""
        errors = [w.line() for w in self.written if not w.ok]
        errors += [INTERRUPTED_UPDATE] if self.update_interrupted else []
        if self.report.is_empty() and not errors and self.outcome.is_empty():
            return []
        out: list[tuple[str, bool]] = []
        if not self.report.is_empty():
            out.append((self.report.to_text(), False))
        if not self.outcome.is_empty():
            out += [("", False), *self.outcome.lines()]
        out += [(w.line(), False) for w in self.written if w.ok and w.line()]
        return out + [(e, True) for e in errors]


@dataclasses.dataclass
class EdgeSession:
    """Settings, the clusters they name, the registries, the baseline read at start-up, the
    records, which edge tests this run selected, and the reference-output cache."""

    config: pytest.Config
    settings: EdgeSettings
    entry_points: EntryPoints
    clusters: tuple[Cluster, ...]
    baseline: Baseline | None = None
    selection: Selection = dataclasses.field(default_factory=Selection)
    collector: ResultCollector = dataclasses.field(default_factory=ResultCollector)
    # Registries by the plugins that implement the hooks: conftest files apply to their
    # own folder only, so two test files may see different registries.
    registries: dict[tuple[int, ...], EdgeRegistry] = dataclasses.field(default_factory=dict)
    # Unpartitioned outputs per model object, weights and input: each runs once.
    references: ReferenceCache = dataclasses.field(default_factory=ReferenceCache)
    reference_runs: int = 0
    # --edge-sensitivity figures by case key: a case several tests run is analysed once.
    sensitivities: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    end: SessionEnd | None = None
    # ONNX files named in --edge-models, read once: the name as given -> the model
    onnx_models: dict[str, OnnxModel] = dataclasses.field(default_factory=dict)
    metering: Metering = dataclasses.field(default_factory=lambda: Metering(None))
    _sent: int = 0  # records already handed to the controller (on a pytest-xdist worker)

    @classmethod
    def start(cls, config: pytest.Config) -> EdgeSession:
        """Read and check the options, collect the registries and read the baseline."""
        settings = read_settings(config)
        entry_points = load_entry_points()
        config.pluginmanager.register(DefaultSources(entry_points), "edgeenergy-defaults")
        registry = collect_registry(config, settings.device_dirs, entry_points)
        check_names(settings, "edge_energy_model", "energy model", [settings.energy_model],
                    list_energy_models())
        clusters = build_clusters(settings, registry.device_dirs)
        check_scenario(settings, clusters)
        session = cls(config, settings, entry_points, clusters, baseline=_read_baseline(settings),
                      metering=_metering(settings))
        session.selection.note_args(config.args)
        if config.pluginmanager.hasplugin("xdist") and not is_worker(config):
            config.pluginmanager.register(XdistController(session), "edgeenergy-xdist")
            if config.getoption("dist", "no") != "no":
                # The controller collects nothing, so names are checked now, against plugins
                # and initial conftest files; without xdist a deeper conftest may add them.
                session.check(registry)
        return session

    def registry(self, node: Located | None = None) -> EdgeRegistry:
        """The registry seen from ``node``'s file, or by every plugin loaded so far."""
        hooks: Any = self.config.hook if node is None else node.session.gethookproxy(node.path)
        key = hook_plugins(hooks)
        registry = self.registries.get(key)
        if registry is None:
            registry = collect_registry(self.config, self.settings.device_dirs,
                                        self.entry_points, hooks)
            self.registries[key] = registry
        return registry

    def onnx_model(self, name: str) -> OnnxModel:
        """The ONNX file an ``.onnx`` entry of ``--edge-models`` names (relative to the
        invocation folder from the command line, to the ini file from the ini file), read once;
        a missing or unreadable file, or an unsupported op, is a usage error."""
        model = self.onnx_models.get(name)
        if model is not None:
            return model
        source = self.settings.source("edge_models")
        config = self.config
        base = (config.inipath.parent if source.kind == "ini file" and config.inipath is not None
                else config.invocation_params.dir)
        try:
            model = load_onnx((base / name).resolve())
        except PartitionError as exc:
            raise pytest.UsageError(
                f"{source.option} (from the {source}) names the ONNX model '{name}': {exc}"
            ) from None
        self.onnx_models[name] = model
        return model

    def model_names(self, registry: EdgeRegistry) -> list[str]:
        """The models to parametrise over: the user's, or the default set."""
        wanted = self.settings.models
        if wanted is None:
            return [m for m in DEFAULT_MODELS if m in registry.models]
        if ALL in wanted:
            return registry.model_names()
        return list(wanted)

    def strategy_names(self, registry: EdgeRegistry) -> list[str]:
        """The strategies to parametrise over: the user's, or every registered one."""
        wanted = self.settings.strategies
        if wanted is None or ALL in wanted:
            return registry.strategy_names()
        return list(wanted)

    def check(self, registry: EdgeRegistry) -> None:
        """Raise the usage error for the first unknown model or strategy name."""
        models = [m for m in self.settings.models or () if m != ALL]
        check_names(self.settings, "edge_models", "model",
                    [m for m in models if not is_onnx_path(m)], registry.model_names())
        for name in models:
            if is_onnx_path(name):
                self.onnx_model(name)
        check_names(self.settings, "edge_strategies", "strategy",
                    [s for s in self.settings.strategies or () if s != ALL],
                    registry.strategy_names())

    # -- collection --------------------------------------------------------------------

    def header(self) -> list[str]:
        """Two header lines: the clusters, models, strategies and energy model of this run;
        the baseline it is compared with (or updates) and the thresholds."""
        registry = self.registry()
        settings = self.settings
        where = display_path(settings.baseline, self.config.rootpath)
        if settings.update_baseline:
            baseline = f"{where} (updating)"
        elif self.baseline is None:
            baseline = f"{where} (none yet: nothing is compared)"
        else:
            limits = ", ".join(t.text for t in settings.fail_on) or "none"
            baseline = (f"{where} ({len(self.baseline.entries)} cases), fail on {limits}"
                        f"{', strict' if settings.strict else ''}")
        return [f"edgeenergy: clusters {', '.join(c.signature for c in self.clusters)}; "
                f"models {', '.join(self.model_names(registry))}; "
                f"strategies {', '.join(self.strategy_names(registry))}; "
                f"energy model {settings.energy_model}{self._conditions()}",
                f"edgeenergy baseline: {baseline}"]

    def _conditions(self) -> str:
        """The scenario and sensitivity parts of the header (empty for the defaults)."""
        settings = self.settings
        text = "" if settings.scenario.is_default else f"; scenario {settings.scenario}"
        if settings.sensitivity:
            text += f"; sensitivity on ({settings.sensitivity_samples} joint draws, seed 0)"
        return text

    def collected(self, items: Iterable[pytest.Item]) -> None:
        """Check names against the final registries; mark every case ``edge`` (before
        ``-m`` deselects)."""
        self.check(self.registry())
        for item in items:
            if is_edge_test(item):
                item.add_marker("edge")

    def deselected(self, items: Iterable[pytest.Item]) -> None:
        """Remember edge tests that ``-k``, ``-m``, ``--deselect`` or ``--lf`` dropped."""
        self.selection.add_deselected((i.nodeid, is_edge_test(i)) for i in items)

    def selected(self, items: Iterable[pytest.Item]) -> None:
        """Remember which edge tests will run: what could produce which baseline entry."""
        self.selection.add_selected((i.nodeid, is_edge_test(i)) for i in items)

    # -- the end -----------------------------------------------------------------------

    def finish(self, exitstatus: int) -> int:
        """End the session; return the exit status it should have.

        On a pytest-xdist worker: hand the records to the controller. Otherwise compare
        with (or update) the baseline, build the report and write every file. A regression
        or (with ``--edge-strict``) an unacknowledged difference, a file that could not be
        written, or a recorded equivalence failure that no test failed on, turns an ``OK``
        status into ``TESTS_FAILED``.
        """
        self.metering.close()
        if is_worker(self.config):
            self._send_to_controller()
            return exitstatus
        settings = self.settings
        interrupted = exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR)
        cases, records = self.collector.cases(), self.collector.records()
        outcome = session_outcome(
            path=settings.baseline, root=self.config.rootpath, baseline=self.baseline,
            records=records, cases=cases, selection=self.selection,
            thresholds=settings.fail_on, strict=settings.strict,
            update=settings.update_baseline and not interrupted,
            strategies=settings.strategies)
        report = dataclasses.replace(build_report(cases, self.collector.failures()),
                                     baseline=outcome)
        report, written = self._extras(report)
        written += write_reports(report, settings.reports)
        if cases:
            written += [w for w in [append_step_summary(report.to_markdown())] if w]
        if settings.benchmark_json is not None:
            written.append(write_benchmark_json(settings.benchmark_json, cases))
        if settings.autosave:
            written.append(self._autosave(cases, records))
        self.end = SessionEnd(report, outcome, tuple(written),
                              update_interrupted=settings.update_baseline and interrupted)
        if self.end.failed and exitstatus == pytest.ExitCode.OK:
            return pytest.ExitCode.TESTS_FAILED
        return exitstatus

    def _extras(self, report: Report) -> tuple[Report, list[Written]]:
        """Add the measured section (``--edge-meter``) and the pictures (``--edge-plot``)."""
        extras: list[Any] = []
        written: list[Written] = []
        if self.settings.meter is not None:
            extras.append(self.metering)
        if self.settings.plot is not None and report.cases:
            target = self.settings.plot
            try:
                paths = write_report_plots(report.to_dict(), target)
            except OSError as exc:
                written.append(Written("picture", str(target), reason(exc)))
            else:
                written += [Written("picture", display_path(p, self.config.rootpath))
                            for p in paths]
                extras.append(PicturesSection(tuple(paths)))
        return dataclasses.replace(report, extras=tuple(extras)), written

    def _autosave(self, cases: Sequence[CaseResult], records: Sequence[CaseResult]) -> Written:
        """Save the run's figures in the history folder (``--edge-autosave``)."""
        folder = self.settings.history_dir
        if not cases:
            return Written("no saved run", "")
        producers: dict[str, set[str]] = {}
        for record in records:
            producers.setdefault(record.key, set()).add(function_id(record.nodeid))
        entries = {c.key: Entry.from_case(c, producers[c.key]) for c in cases if c.ok}
        failed = [c.key for c in cases if not c.ok]
        try:
            path = save_run(folder, entries, failed, git_info(self.config.rootpath))
        except OSError as exc:
            return Written("saved run", str(folder), reason(exc))
        return Written("saved run", display_path(path, self.config.rootpath))

    def summarize(self, terminal: pytest.TerminalReporter) -> None:
        """Print the tables and the baseline comparison once (on the controller)."""
        lines = [] if self.end is None or is_worker(self.config) else self.end.lines()
        if lines:
            terminal.section("edge energy")
        for line, bad in lines:
            terminal.write_line(line, red=bad)

    # -- pytest-xdist ------------------------------------------------------------------

    def _unsent(self) -> str | None:
        """The records made since the last call, as JSON (None: none)."""
        records = list(self.collector)[self._sent:]
        self._sent += len(records)
        if not records:
            return None
        return json.dumps([c.to_dict() for c in records], sort_keys=True, allow_nan=False)

    def attach_records(self, report: pytest.TestReport) -> None:
        """On a pytest-xdist worker: put the records made since the last report on this one,
        which xdist hands to the controller at once."""
        if is_worker(self.config):
            text = self._unsent()
            if text is not None:
                setattr(report, STREAM_KEY, text)

    def _send_to_controller(self) -> None:
        output: dict[str, Any] = self.config.workeroutput  # type: ignore[attr-defined]
        text = self._unsent()  # made outside any test (the reports carried the others)
        if text is not None:
            output[WORKEROUTPUT_KEY] = text
        output[SELECTION_KEY] = self.selection.to_json()
        output[MEASURED_KEY] = self.metering.to_json()

    def merge_records(self, text: str | None) -> None:
        """Merge records a worker sent (with a test's report, or at its end)."""
        if text:
            self.collector.extend(CaseResult.from_dict(d) for d in json.loads(text))

    def merge_worker(self, output: dict[str, Any]) -> None:
        """Merge what a finished worker handed over at its end (a crashed one hands nothing:
        the records of the tests it finished came with their reports)."""
        self.merge_records(output.get(WORKEROUTPUT_KEY))
        selection = output.get(SELECTION_KEY)
        if selection:
            self.selection.merge_json(selection)
        measured = output.get(MEASURED_KEY)
        if measured:
            self.metering.merge_json(measured)


class XdistController:
    """The controller's hooks under pytest-xdist, registered only when it is active (as
    pytest-randomly does), so the plugin never imports xdist itself. Each worker puts its
    records and its selection in ``workeroutput``; the controller alone compares and writes.
    """

    def __init__(self, session: EdgeSession) -> None:
        self.session = session

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Merge the records a worker's test made, as the test ends."""
        self.session.merge_records(getattr(report, STREAM_KEY, None))

    @pytest.hookimpl
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """Merge the records of a worker that finished."""
        self.session.merge_worker(getattr(node, "workeroutput", {}))


def _metering(settings: EdgeSettings) -> Metering:
    """The run's meter (``--edge-meter``); one that cannot measure here is reported, not an
    error."""
    try:
        return Metering(settings.meter)
    except EdgeEnergyError as exc:  # the option's parser checked the name: a meter's failure
        source = settings.source("edge_meter")
        raise pytest.UsageError(f"{source.option}={settings.meter!r} (from the {source}): "
                                f"{exc}") from None


def _read_baseline(settings: EdgeSettings) -> Baseline | None:
    """The baseline, or None without a file; a usage error for a file that is not ours."""
    try:
        return load_baseline(settings.baseline)
    except BaselineError as exc:
        source = settings.source("edge_baseline")
        raise pytest.UsageError(
            f"{source.option}={str(settings.baseline)!r} (from the {source}): {exc}. The file "
            "was left as it is (pytest-edgeenergy never writes over a file it cannot read, "
            "--edge-update-baseline included): restore it from version control, or delete it "
            "or name another file to record a new baseline") from None


SESSION_KEY = pytest.StashKey[EdgeSession]()
"""Where the session's :class:`EdgeSession` lives: ``config.stash[SESSION_KEY]``."""


def edge_session(config: pytest.Config) -> EdgeSession:
    """The session's :class:`EdgeSession` (set up in ``pytest_configure``)."""
    return config.stash[SESSION_KEY]
