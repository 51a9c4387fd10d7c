"""Repository-wide test settings: heavy tests opt-in, hypothesis profiles, and nested runs kept
out of CI's summary.

**Heavy tests** (big zoo models, full matrices, benchmarks, subprocess swarms) are marked
``@pytest.mark.heavy`` and left out of a plain ``pytest`` run, which stays fast. Run them with
``pytest --heavy`` (everything) or ``pytest -m heavy`` (only them); every test under
``tests/benchmarks/`` is heavy. Any ``-m`` expression decides by itself (``-m "heavy or not
heavy"`` is everything too), and a heavy test named by its node id (``path::test``) runs.
Deselected heavy tests are reported as deselected, so the plugin's baseline bookkeeping knows
they did not run.

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


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--heavy``: also run the tests marked heavy."""
    parser.addoption("--heavy", action="store_true", default=False,
                     help="also run the tests marked heavy (left out by default; see conftest.py)")


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
