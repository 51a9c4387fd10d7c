"""The repository's conftest.py runs the whole default run on two pytest-xdist workers, and
everything else in one process (README, "Running the tests")."""

from __future__ import annotations

from types import ModuleType

import pytest

from pytest_edgeenergy.plugin.testing import REPO_ROOT

pytest_plugins = ["pytester"]


@pytest.fixture
def repo_conftest(request: pytest.FixtureRequest) -> ModuleType:
    """The repository's conftest.py, as this session loaded it."""
    plugin = request.config.pluginmanager.get_plugin(str(REPO_ROOT / "conftest.py"))
    assert isinstance(plugin, ModuleType), "the repository's conftest.py is not loaded"
    return plugin


@pytest.mark.parametrize(("args", "workers", "dist"), [
    ([], 2, "loadscope"),  # the whole default run
    (["-m", "heavy"], None, "no"),  # the benchmarks time on one process
    (["--heavy"], None, "no"),
    (["test_x.py"], None, "no"),  # a chosen file: workers would cost more than it takes
    (["test_x.py::test_a"], None, "no"),
    (["-n", "0"], 0, "no"),
    (["-n", "3"], 3, "no"),  # pytest-xdist's own hook then makes it "load"
    (["-s"], None, "no"),
    (["--pdb"], None, "no"),
    (["--collect-only"], None, "no"),
])
def test_only_the_whole_default_run_starts_workers(
        pytester: pytest.Pytester, repo_conftest: ModuleType, args: list[str],
        workers: int | None, dist: str) -> None:
    pytester.makepyfile(test_x="def test_a():\n    pass\n")
    pytester.plugins.append(repo_conftest)  # its --heavy option
    config = pytester.parseconfig(*args)
    repo_conftest.pytest_cmdline_main(config)
    assert (config.option.numprocesses, config.option.dist) == (workers, dist)


def test_an_xdist_worker_starts_no_workers_of_its_own(
        pytester: pytest.Pytester, repo_conftest: ModuleType,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.plugins.append(repo_conftest)
    config = pytester.parseconfig()
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    repo_conftest.pytest_cmdline_main(config)
    assert config.option.numprocesses is None
