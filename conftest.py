"""Repository-wide test settings: hypothesis profiles, and nested runs kept out of CI's summary.

``fast`` (the default) keeps local runs quick; ``ci`` (chosen when the environment variable CI
is set, or with HYPOTHESIS_PROFILE=ci) is derandomised, so a CI run is reproducible, and tries
more examples.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "fast", max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "ci", max_examples=120, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_default = "ci" if os.environ.get("CI") else "fast"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default))


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


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``heavy`` marker (big zoo models, full matrices, subprocess swarms)."""
    config.addinivalue_line(
        "markers", "heavy: slow tests (big zoo models, full matrices, subprocess swarms); "
                   "skipped unless selected with -m heavy")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``heavy`` tests unless the marker expression names them."""
    if "heavy" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="heavy: run with -m heavy")
    for item in items:
        if "heavy" in item.keywords:
            item.add_marker(skip)
