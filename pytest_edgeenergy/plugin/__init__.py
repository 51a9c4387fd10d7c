"""The pytest plugin (entry point ``pytest11: edgeenergy``): the hooks, and nothing else.

Each hook is one to three lines over the session's :class:`~.session.EdgeSession` (in
``config.stash``), as syrupy's hooks are over its ``SnapshotSession``. The pytest glue is
split by job: :mod:`.options` (options, ini keys, settings), :mod:`.hookspecs` (hooks other
plugins implement), :mod:`.registry` (what can be named), :mod:`.fixtures` (fixtures and
parametrisation), :mod:`.session` (the session's state and its end) and :mod:`.ci` (JUnit XML
properties). Everything that needs no pytest (results, baselines, saved runs, thresholds,
reports) is in :mod:`pytest_edgeenergy.records`.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from . import fixtures, hookspecs
from .fixtures import EdgeModel, EdgeResult, EdgeRunner, generate_tests, param_id
from .gloo import GLOO_KEY, GlooSession
from .options import add_options
from .session import SESSION_KEY, EdgeSession, edge_session

# The types a test annotates with; the fixtures are found on the fixtures module, which
# pytest_configure registers as a plugin of its own.
__all__ = ["EdgeModel", "EdgeResult", "EdgeRunner"]

MARKER = "edge: a partitioned-inference case of pytest-edgeenergy (model x strategy x cluster)"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``edgeenergy`` option group and its ini keys."""
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Add the hooks through which plugins and conftest files register things."""
    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    """Add the fixtures; read and check the options, collect the registries, read the
    baseline."""
    config.addinivalue_line("markers", MARKER)
    config.pluginmanager.register(fixtures, "edgeenergy-fixtures")
    config.stash[SESSION_KEY] = EdgeSession.start(config)
    # The backend: the gloo worker pool (started when a case needs it), closed at the end.
    config.stash[GLOO_KEY] = gloo = GlooSession(config)
    config.pluginmanager.register(gloo, "edgeenergy-gloo")


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """The clusters, models, strategies and energy model; the baseline and thresholds."""
    return edge_session(config).header() if SESSION_KEY in config.stash else None


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
    edge_session(config).collected(items)


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Remember edge tests that ``-k``, ``-m``, ``--deselect`` or ``--lf`` dropped."""
    if items and SESSION_KEY in items[0].config.stash:
        edge_session(items[0].config).deselected(items)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Remember which edge tests will run: what could produce which baseline entry."""
    edge_session(session.config).selected(session.items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """On a pytest-xdist worker, each report carries the records its test phase made."""
    report = yield
    if SESSION_KEY in item.config.stash:
        edge_session(item.config).attach_records(report)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Finish the session (on a worker: hand the results to the controller); the exit status
    is set here, never by raising from the summary."""
    if SESSION_KEY in session.config.stash:
        session.exitstatus = edge_session(session.config).finish(session.exitstatus)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    """Print the comparison tables and the baseline comparison once (on the controller)."""
    edge_session(config).summarize(terminalreporter)
