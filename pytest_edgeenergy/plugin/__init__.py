"""The pytest plugin (entry point ``pytest11: edgeenergy``): the hooks, and nothing else.

Each job lives in its own module: :mod:`.options` (options, ini keys, settings),
:mod:`.hookspecs` (hooks other plugins implement), :mod:`.registry` (what can be named),
:mod:`.fixtures` (fixtures and parametrisation), :mod:`.results` (the per-case record),
:mod:`.report` (tables and files) and :mod:`.xdist` (workers to controller). State lives in
``config.stash`` (:mod:`.state`, :data:`.results.RESULTS_KEY`).
"""

from __future__ import annotations

import pytest

from ..energy import list_energy_models
from . import hookspecs
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
from .options import add_options, build_clusters, read_settings, unknown_name_error
from .registry import collect_registry, load_entry_points
from .report import Report, build_report, write_reports
from .results import RESULTS_KEY, CaseResult, ResultCollector
from .state import STATE_KEY, EdgeState
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

_REPORT_KEY = pytest.StashKey[tuple[Report, list[str]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``edgeenergy`` option group and its ini keys."""
    add_options(parser)


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
    state = EdgeState(settings, entry_points, clusters)
    config.stash[STATE_KEY] = state
    if config.pluginmanager.hasplugin("xdist") and not is_worker(config):
        config.pluginmanager.register(EdgeXdistController(config), "edgeenergy-xdist")
        if config.getoption("dist", "no") != "no":
            # The controller collects nothing, so names are checked now, against plugins and
            # initial conftest files; without xdist a deeper conftest may still add them.
            state.check(registry)


def pytest_report_header(config: pytest.Config) -> str | None:
    """One header line: the clusters, models, strategies and energy model of this run."""
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        return None
    registry = state.registry(config)
    return (f"edgeenergy: clusters {', '.join(c.signature for c in state.clusters)}; "
            f"models {', '.join(state.model_names(registry))}; "
            f"strategies {', '.join(state.strategy_names(registry))}; "
            f"energy model {state.settings.energy_model}")


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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Hand results to the controller (on a worker), or build the report and write its files.

    The exit status is set here, never by raising from the summary: a report that could not
    be written, or a recorded equivalence failure that no test failed on, fails the run.
    """
    config = session.config
    if STATE_KEY not in config.stash:
        return
    if is_worker(config):
        send_to_controller(config)
        return
    collector = config.stash[RESULTS_KEY]
    report = build_report(collector.cases(), collector.failures())
    errors = write_reports(report, config.stash[STATE_KEY].settings.reports)
    config.stash[_REPORT_KEY] = (report, errors)
    if (errors or report.failures) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    """Print the comparison tables once (on the controller under pytest-xdist)."""
    if is_worker(config) or _REPORT_KEY not in config.stash:
        return
    report, errors = config.stash[_REPORT_KEY]
    if report.is_empty() and not errors:
        return
    terminalreporter.section("edge energy")
    if not report.is_empty():
        terminalreporter.write_line(report.to_text())
    for path in config.stash[STATE_KEY].settings.reports:
        if not any(str(path) in e for e in errors):
            terminalreporter.write_line(f"edge energy report written to {path}")
    for error in errors:
        terminalreporter.write_line(error, red=True)
