"""The pytest plugin (entry point ``pytest11: edgeenergy``): the hooks, and nothing else.

Each job lives in its own module: :mod:`.options` (options, ini keys, settings),
:mod:`.hookspecs` (hooks other plugins implement), :mod:`.registry` (what can be named),
:mod:`.fixtures` (fixtures and parametrisation), :mod:`.results` (the per-case record),
:mod:`.report` (tables and files), :mod:`.xdist` (workers to controller), and for regression
tracking :mod:`.baseline` (the file), :mod:`.thresholds` (metrics and limits),
:mod:`.tracking` (the session against the baseline), :mod:`.runs` (saved runs) and :mod:`.ci`
(CI outputs). State lives in ``config.stash`` (:mod:`.state`, :data:`.results.RESULTS_KEY`).
"""

from __future__ import annotations

import dataclasses

import pytest

from ..energy import list_energy_models
from . import hookspecs
from .baseline import Baseline, BaselineError, Entry, function_id, load_baseline
from .ci import append_step_summary, write_benchmark_json
from .fixtures import (
    EDGE_ARGNAMES,
    EdgeModel,
    EdgeResult,
    EdgeRunner,
    edge_cluster,
    edge_model,
    edge_run,
    edge_strategy,
    generate_tests,
    param_id,
)
from .gloo import GLOO_KEY, GlooSession, add_gloo_options
from .options import (
    EdgeSettings,
    add_options,
    build_clusters,
    read_settings,
    unknown_name_error,
)
from .registry import collect_registry, load_entry_points
from .report import Report, build_report, write_reports
from .results import RESULTS_KEY, CaseResult, ResultCollector
from .runs import git_info, save_run
from .state import STATE_KEY, EdgeState
from .tracking import BaselineOutcome, display_path, session_outcome
from .xdist import EdgeXdistController, is_worker, send_to_controller

__all__ = [
    "CaseResult",
    "EdgeModel",
    "EdgeResult",
    "EdgeRunner",
    "edge_cluster",
    "edge_model",
    "edge_run",
    "edge_strategy",
]

MARKER = "edge: a partitioned-inference case of pytest-edgeenergy (model x strategy x cluster)"


@dataclasses.dataclass(frozen=True)
class _Finish:
    """What the session's end produced, for the terminal summary."""

    report: Report
    outcome: BaselineOutcome
    notes: list[str]  # files written
    errors: list[str]


_FINISH_KEY = pytest.StashKey[_Finish]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``edgeenergy`` option group and its ini keys."""
    add_options(parser)
    add_gloo_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Add the hooks through which plugins and conftest files register things."""
    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    """Read and check the options, collect the registries, and set up the session state."""
    config.addinivalue_line("markers", MARKER)
    config.stash[RESULTS_KEY] = ResultCollector()
    settings = read_settings(config)
    entry_points = load_entry_points()
    registry = collect_registry(config, settings.device_dirs, entry_points)
    energy_models = list_energy_models()
    if settings.energy_model not in energy_models:
        raise unknown_name_error(settings, "edge_energy_model", "energy model",
                                 settings.energy_model, energy_models)
    clusters = build_clusters(settings, registry.device_dirs)
    state = EdgeState(settings, entry_points, clusters, baseline=_read_baseline(settings))
    state.selection.note_args(config.args)
    config.stash[STATE_KEY] = state
    gloo = GlooSession(config)  # the backend options; the gloo worker pool, started lazily
    config.stash[GLOO_KEY] = gloo
    config.pluginmanager.register(gloo, "edgeenergy-gloo")
    if config.pluginmanager.hasplugin("xdist") and not is_worker(config):
        config.pluginmanager.register(EdgeXdistController(config), "edgeenergy-xdist")
        if config.getoption("dist", "no") != "no":
            # The controller collects nothing, so names are checked now, against plugins and
            # initial conftest files; without xdist a deeper conftest may still add them.
            state.check(registry)


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


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """Two header lines: the clusters, models, strategies and energy model of this run; the
    baseline it is compared with (or updates) and the thresholds."""
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        return None
    registry = state.registry(config)
    settings = state.settings
    where = display_path(settings.baseline, config.rootpath)
    if settings.update_baseline:
        baseline = f"{where} (updating)"
    elif state.baseline is None:
        baseline = f"{where} (none yet: nothing is compared)"
    else:
        limits = ", ".join(t.text for t in settings.fail_on) or "none"
        baseline = (f"{where} ({len(state.baseline.entries)} cases), fail on {limits}"
                    f"{', strict' if settings.strict else ''}")
    return [f"edgeenergy: clusters {', '.join(c.signature for c in state.clusters)}; "
            f"models {', '.join(state.model_names(registry))}; "
            f"strategies {', '.join(state.strategy_names(registry))}; "
            f"energy model {settings.energy_model}",
            f"edgeenergy baseline: {baseline}"]


# After parametrize marks, so a test's own values come first in its id.
@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise edge_model, edge_strategy and edge_cluster from the registries."""
    generate_tests(metafunc)


def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    """Ids from a strategy's name, a model's name and a cluster's signature."""
    return param_id(val, argname)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check names against the final registries; mark every case ``edge`` (before ``-m``)."""
    state = config.stash[STATE_KEY]
    state.check(state.registry(config))
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in (*EDGE_ARGNAMES, "edge_run")):
            item.add_marker("edge")


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Remember edge tests that ``-k``, ``-m``, ``--deselect`` or ``--lf`` dropped."""
    if items and STATE_KEY in items[0].config.stash:
        items[0].config.stash[STATE_KEY].selection.add_deselected(items)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Remember which edge tests will run: what could produce which baseline entry."""
    state = session.config.stash.get(STATE_KEY, None)
    if state is not None:
        state.selection.add_selected(session.items)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Hand results to the controller (on a worker), or finish the session on the controller:
    compare with (or update) the baseline, build the report and write every file.

    The exit status is set here, never by raising from the summary: a regression or (with
    ``--edge-strict``) an unacknowledged difference, a file that could not be written, or a
    recorded equivalence failure that no test failed on, fails the run.
    """
    config = session.config
    if STATE_KEY not in config.stash:
        return
    if is_worker(config):
        send_to_controller(config)
        return
    state, collector = config.stash[STATE_KEY], config.stash[RESULTS_KEY]
    settings = state.settings
    cases, records = collector.cases(), collector.records()
    interrupted = session.exitstatus in (pytest.ExitCode.INTERRUPTED,
                                         pytest.ExitCode.INTERNAL_ERROR)
    outcome = session_outcome(
        path=settings.baseline, root=config.rootpath, baseline=state.baseline, records=records,
        cases=cases, selection=state.selection, thresholds=settings.fail_on,
        strict=settings.strict, update=settings.update_baseline and not interrupted,
        strategies=settings.strategies)
    report = dataclasses.replace(build_report(cases, collector.failures()), baseline=outcome)
    errors = write_reports(report, settings.reports)
    notes = [f"edge energy report written to {p}" for p in settings.reports
             if not any(str(p) in e for e in errors)]
    if settings.update_baseline and interrupted:
        errors.append("the session was interrupted: the edge baseline was not updated")
    if cases:
        step_error = append_step_summary(report.to_markdown())
        errors += [step_error] if step_error else []
    if settings.benchmark_json is not None:
        bench_error = write_benchmark_json(settings.benchmark_json, cases)
        if bench_error:
            errors.append(bench_error)
        else:
            notes.append(f"edge benchmark JSON written to {settings.benchmark_json}")
    if settings.autosave:
        errors, notes = _autosave(config, cases, records, errors, notes)
    config.stash[_FINISH_KEY] = _Finish(report, outcome, notes, errors)
    if ((errors or report.failures or outcome.failed_run)
            and session.exitstatus == pytest.ExitCode.OK):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _autosave(config: pytest.Config, cases: list[CaseResult], records: list[CaseResult],
              errors: list[str], notes: list[str]) -> tuple[list[str], list[str]]:
    """Save the run's figures in the history folder (``--edge-autosave``)."""
    settings = config.stash[STATE_KEY].settings
    if not cases:
        return errors, [*notes, "no edge case ran: no run saved"]
    producers: dict[str, set[str]] = {}
    for record in records:
        producers.setdefault(record.key, set()).add(function_id(record.nodeid))
    entries = {c.key: Entry.from_case(c, producers[c.key]) for c in cases if c.ok}
    failed = [c.key for c in cases if not c.ok]
    try:
        path = save_run(settings.history_dir, entries, failed, git_info(config.rootpath))
    except OSError as exc:
        return [*errors, f"could not save the run in {settings.history_dir}: "
                         f"{exc.strerror or exc}"], notes
    return errors, [*notes, f"edge energy run saved to {display_path(path, config.rootpath)}"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    """Print the comparison tables and the baseline comparison once (on the controller)."""
    if is_worker(config) or _FINISH_KEY not in config.stash:
        return
    finish = config.stash[_FINISH_KEY]
    if finish.report.is_empty() and not finish.errors and finish.outcome.is_empty():
        return
    terminalreporter.section("edge energy")
    if not finish.report.is_empty():
        terminalreporter.write_line(finish.report.to_text())
    if not finish.outcome.is_empty():
        terminalreporter.write_line("")
        for line, bad in finish.outcome.lines():
            terminalreporter.write_line(line, red=bad)
    for note in finish.notes:
        terminalreporter.write_line(note)
    for error in finish.errors:
        terminalreporter.write_line(error, red=True)
