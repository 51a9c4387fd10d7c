"""Repository-wide test settings: heavy tests opt-in, the default run on two pytest-xdist
workers, hypothesis profiles, and nested runs kept out of CI's summary.

**Heavy tests** (big zoo models, full matrices, benchmarks, subprocess swarms) are marked
``@pytest.mark.heavy`` and left out of a plain ``pytest`` run, which stays fast. Run them with
``pytest --heavy`` (everything) or ``pytest -m heavy`` (only them); every test under
``tests/benchmarks/`` is heavy. Any ``-m`` expression decides by itself (``-m "heavy or not
heavy"`` is everything too), and a heavy test named by its node id (``path::test``) runs.
Deselected heavy tests are reported as deselected, so the plugin's baseline bookkeeping knows
they did not run.

**Two workers**: a plain ``pytest`` (the whole default run) runs on :data:`DEFAULT_WORKERS`
pytest-xdist workers; ``-n 0`` keeps it in one process. Runs of named paths or tests, heavy
runs, ``-s`` and ``--pdb`` stay in one process by themselves (:func:`pytest_cmdline_main`);
``-n 2`` asks for workers.

**Hypothesis profiles**: ``fast`` (the default) keeps local runs quick; ``ci`` (chosen when
the environment variable CI is set, or with HYPOTHESIS_PROFILE=ci) is derandomised, so a CI run
is reproducible, and tries more examples.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

HEAVY = "heavy"
DEFAULT_WORKERS = 2
"""pytest-xdist workers of the default run: the cores of the 2-core machine the suite's time
budget is set on (issue 8: the default run under 3 minutes)."""
BENCHMARKS = Path(__file__).resolve().parent / "tests" / "benchmarks"

settings.register_profile(
    "fast", max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "ci", max_examples=120, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_default = "ci" if os.environ.get("CI") else "fast"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default))


def _import_matplotlib_once() -> None:
    """Import the matplotlib modules the pictures use before any test runs.

    pytester's in-process runs drop the modules first imported inside them. A nested run that
    draws would import half of matplotlib and lose it afterwards, and the next picture would
    mix two copies of its classes ("Single argument to subplot must be a three-digit
    integer"). Imported here, they are in every snapshot and kept.
    """
    with contextlib.suppress(ImportError):  # without the plot extra there is nothing to keep
        importlib.import_module("matplotlib.figure")
        importlib.import_module("matplotlib.backends.backend_svg")
        importlib.import_module("matplotlib.backends.backend_agg")


_import_matplotlib_once()


@pytest.fixture(autouse=True)
def _no_job_summary_in_nested_runs(request: pytest.FixtureRequest,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the nested pytest runs of pytester tests out of a CI job's summary.

    GitHub Actions sets ``$GITHUB_STEP_SUMMARY`` for the whole job; a pytester run inherits
    it and would append its report to the job's page. (The outer session appends its own
    report at its end, after this fixture has restored the variable.) A test that checks the
    summary sets its own file.
    """
    if "pytester" in request.fixturenames:
        monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
        # Under pytest-xdist this process is a worker; the nested run is a session of its own
        # (pytest-benchmark, for one, turns itself off where it sees a worker's variables).
        for name in _XDIST_WORKER_VARIABLES:
            monkeypatch.delenv(name, raising=False)


_XDIST_WORKER_VARIABLES = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT",
                           "PYTEST_XDIST_TESTRUNUID")


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--heavy``: also run the tests marked heavy."""
    parser.addoption("--heavy", action="store_true", default=False,
                     help="also run the tests marked heavy (left out by default; see conftest.py)")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own, which starts the workers
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Run a plain ``pytest`` (the whole default run, from ``testpaths``) on
    :data:`DEFAULT_WORKERS` pytest-xdist workers, one test module per worker at a time
    (``--dist loadscope``: a module's fixtures and caches are made once).

    A run stays in one process when the command chooses otherwise (``-n``, ``--dist``,
    ``--tx``), names files, folders or tests (starting workers would cost more than a small
    selection takes), selects heavy tests (``--heavy``, any ``-m``: the benchmarks time on one
    process), collects only, debugs (``--pdb``, ``--trace``) or shows output (``-s``); and
    always on an xdist worker, or without pytest-xdist.
    """
    option = config.option
    # An xdist worker runs this hook too, with the options of a plain run: it must not start
    # workers of its own (nor a pytest that one of its tests starts here).
    if (not config.pluginmanager.hasplugin("xdist") or hasattr(config, "workerinput")
            or "PYTEST_XDIST_WORKER" in os.environ):
        return
    chosen = (option.numprocesses is not None or option.dist != "no" or option.tx
              or option.distload)
    heavy = config.getoption("heavy") or config.getoption("markexpr", "")
    named = config.args_source is pytest.Config.ArgsSource.ARGS
    debugging = option.usepdb or getattr(option, "trace", False) or option.capture == "no"
    if chosen or heavy or named or option.collectonly or debugging:
        return
    option.numprocesses = DEFAULT_WORKERS
    option.dist = "loadscope"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``heavy`` marker."""
    config.addinivalue_line(
        "markers", f"{HEAVY}: a slow test (big models, full matrices, benchmarks, subprocess "
        "swarms), left out unless --heavy or a -m expression selects it")


def pytest_itemcollected(item: pytest.Item) -> None:
    """Every test under ``tests/benchmarks/`` is a benchmark, and so heavy."""
    if BENCHMARKS in item.path.parents:
        item.add_marker(HEAVY)


def _named(item: pytest.Item, nodes: list[str]) -> bool:
    return any(item.nodeid == node or item.nodeid.startswith((node + "::", node + "["))
               for node in nodes)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect heavy tests unless ``--heavy`` or a ``-m`` expression was given, or the test
    was named by its node id (``path::test``)."""
    if config.getoption("heavy") or config.getoption("markexpr", ""):
        return
    nodes = [arg for arg in config.args if "::" in arg]
    heavy = [item for item in items
             if item.get_closest_marker(HEAVY) is not None and not _named(item, nodes)]
    if heavy:
        config.hook.pytest_deselected(items=heavy)
        dropped = {id(item) for item in heavy}
        items[:] = [item for item in items if id(item) not in dropped]
