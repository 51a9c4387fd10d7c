"""The three ways of adding a strategy (and a model, and devices): a hook in conftest.py, an
installed package's entry point, and indirect parametrisation in one test."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from edge_project import HAND_OFF

from pytest_edgeenergy.plugin.testing import run, warm_up
from pytest_edgeenergy.profiles import shipped_profiles_dir

pytest_plugins = ["pytester"]
warm_up()

# A module a user might write: a strategy and a model.
STRATEGY_MODULE = HAND_OFF + """

def tiny_builder():
    import torch.nn as nn
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 2))


tiny_builder.input_shape = (1, 3, 8, 8)
"""

CASE_TEST = """
def test_case(edge_run):
    edge_run()
"""


def ids_of(result: pytest.RunResult) -> list[str]:
    """The ids of ``test_case`` in ``--collect-only -q`` output."""
    return [line.split("[", 1)[1].rstrip("]") for line in result.outlines
            if "::test_case[" in line]


def test_a_conftest_hook_adds_a_strategy_model_and_device(pytester: pytest.Pytester) -> None:
    """Hook implementations in conftest.py join the parametrisation and the report."""
    pytester.makepyfile(userstrats=STRATEGY_MODULE, test_case=CASE_TEST)
    profiles = pytester.path / "profiles"
    profiles.mkdir()
    rpi4 = (Path(str(shipped_profiles_dir())) / "rpi4.toml").read_text()
    (profiles / "board-x.toml").write_text(rpi4.replace('name = "rpi4"', 'name = "board-x"'))
    pytester.makeconftest("""
        from pathlib import Path
        from userstrats import HandOff, tiny_builder

        def pytest_edgeenergy_add_strategies(config):
            return [HandOff]

        def pytest_edgeenergy_add_models(config):
            return {"tiny": (tiny_builder, (1, 3, 8, 8))}

        def pytest_edgeenergy_add_devices(config):
            return [Path(__file__).parent / "profiles"]
    """)
    result = run(pytester, "--edge-models=tiny", "--edge-strategies=hand-off,layer",
                 "--edge-device=board-x", "--edge-devices=2")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*tiny on 2xboard-x (input 1x3x8x8, energy model board)*",
                                 "hand-off *", "layer *"])


def test_a_conftest_strategy_joins_every_strategy_by_default(pytester: pytest.Pytester) -> None:
    """Without ``--edge-strategies``, a hook's strategy runs beside the four classic ones."""
    pytester.makepyfile(userstrats=STRATEGY_MODULE, test_case=CASE_TEST)
    pytester.makeconftest("""
        from userstrats import HandOff

        def pytest_edgeenergy_add_strategies(config):
            return {"hand-off": HandOff}
    """)
    result = run(pytester, "--collect-only", "-q", "--edge-models=tinycnn")
    assert ids_of(result) == [f"tinycnn-{s}-4xrpi4" for s in
                              ("layer", "spatial", "output-channel", "input-channel", "search",
                               "hand-off")]


def test_a_strategy_from_a_subfolder_conftest_applies_to_that_folder_only(
        pytester: pytest.Pytester) -> None:
    """conftest.py files are folder-scoped: a sibling folder does not see its strategy."""
    pytester.makepyfile(userstrats=STRATEGY_MODULE)
    pytester.mkpydir("a")
    pytester.mkpydir("b")
    (pytester.path / "a" / "conftest.py").write_text(textwrap.dedent("""
        from userstrats import HandOff

        def pytest_edgeenergy_add_strategies(config):
            return [HandOff]
    """))
    (pytester.path / "a" / "test_case.py").write_text(CASE_TEST)
    (pytester.path / "b" / "test_case.py").write_text(CASE_TEST)
    result = run(pytester, "--collect-only", "-q", "--edge-models=tinycnn",
                 "--edge-strategies=layer,hand-off", "-p", "no:randomly")
    lines = [line for line in result.outlines if "::test_case[" in line]
    assert sorted(lines) == ["a/test_case.py::test_case[tinycnn-hand-off-4xrpi4]",
                             "a/test_case.py::test_case[tinycnn-layer-4xrpi4]",
                             "b/test_case.py::test_case[tinycnn-layer-4xrpi4]"]


def test_a_name_added_twice_is_a_usage_error_naming_both(pytester: pytest.Pytester) -> None:
    """Two different strategies called 'layer' cannot both be meant."""
    pytester.makepyfile(userstrats=STRATEGY_MODULE, test_case=CASE_TEST)
    pytester.makeconftest("""
        from userstrats import HandOff

        def pytest_edgeenergy_add_strategies(config):
            return {"layer": lambda **params: HandOff(**params)}
    """)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: strategy 'layer' is added twice: by built-in and by hook "
        "pytest_edgeenergy_add_strategies in */conftest.py; rename one of them"])


def test_the_built_in_strategies_and_models_are_the_trylast_implementation_of_the_hooks(
        pytester: pytest.Pytester) -> None:
    """Built-ins take the plugins' path through pluggy: a ``trylast`` hook implementation."""
    pytester.makepyfile(test_case="""
        def test_case(request):
            manager = request.config.pluginmanager
            for hook, built_in in (("pytest_edgeenergy_add_strategies", "layer"),
                                   ("pytest_edgeenergy_add_models", "tinycnn")):
                impls = getattr(manager.hook, hook).get_hookimpls()
                assert impls[0].plugin_name == "edgeenergy-defaults"
                assert impls[0].opts["trylast"]
                entries = impls[0].function(config=request.config)
                assert built_in in [e.name for e in entries]
                assert {e.origin for e in entries} == {"built-in"}
    """)
    result = run(pytester)
    result.assert_outcomes(passed=1)


def _fake_distribution(site: Path, entry_points: str) -> None:
    """An installed distribution (a dist-info folder) whose entry points are ``entry_points``."""
    info = site / "edge_extras-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: edge-extras\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    (site / "edge_extras").mkdir()
    (site / "edge_extras" / "__init__.py").write_text(STRATEGY_MODULE)
    devices = site / "edge_extras" / "profiles"
    devices.mkdir()
    (devices / "__init__.py").write_text("")
    rpi4 = (Path(str(shipped_profiles_dir())) / "rpi4.toml").read_text()
    (devices / "pkg-board.toml").write_text(rpi4.replace('name = "rpi4"', 'name = "pkg-board"'))


@pytest.fixture
def installed(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fake installed package, on sys.path for this test only."""
    site = pytester.path / "site"
    _fake_distribution(site, textwrap.dedent("""
        [pytest_edgeenergy.strategies]
        hand-off = edge_extras:HandOff

        [pytest_edgeenergy.models]
        pkg-tiny = edge_extras:tiny_builder

        [pytest_edgeenergy.devices]
        boards = edge_extras.profiles
    """))
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in [m for m in sys.modules if m.startswith("edge_extras")]:
        del sys.modules[name]


def test_an_installed_packages_entry_points_add_strategy_model_and_devices(
        pytester: pytest.Pytester, installed: Path) -> None:
    """Entry points in the three groups are found without any configuration."""
    pytester.makepyfile(test_case=CASE_TEST)
    result = run(pytester, "--edge-models=pkg-tiny", "--edge-strategies=hand-off",
                 "--edge-cluster=rpi4,pkg-board")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*pkg-tiny on rpi4+pkg-board*", "hand-off *1 (best)*"])


def test_a_broken_entry_point_is_a_usage_error_naming_it(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package whose entry point cannot load is named with its distribution."""
    site = pytester.path / "site"
    _fake_distribution(site, "[pytest_edgeenergy.strategies]\nbroken = edge_extras:Missing\n")
    monkeypatch.syspath_prepend(str(site))
    pytester.makepyfile(test_case=CASE_TEST)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: entry point 'broken = edge_extras:Missing' in group "
        "'pytest_edgeenergy.strategies' of edge-extras 1.0 failed to load: AttributeError: *"])
    sys.modules.pop("edge_extras", None)


def test_indirect_parametrisation_runs_a_strategy_object_in_one_test(
        pytester: pytest.Pytester) -> None:
    """``parametrize("edge_strategy", [obj], indirect=True)``: no registration needed."""
    pytester.makepyfile(userstrats=STRATEGY_MODULE)
    pytester.makepyfile(test_case="""
        import pytest
        from userstrats import HandOff
        from pytest_edgeenergy.strategies import SpatialStrategy

        @pytest.mark.parametrize("edge_strategy", [HandOff(), SpatialStrategy(fuse=1)],
                                 indirect=True)
        def test_case(edge_run, edge_strategy):
            result = edge_run()
            assert result.case.strategy in ("hand-off", "spatial(fuse=1)")
    """)
    result = run(pytester, "-v", "--edge-models=tinycnn")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*test_case?hand-off-tinycnn-4xrpi4? PASSED*",
                                 "*test_case?spatial(fuse=1)-tinycnn-4xrpi4? PASSED*"])
    result.stdout.fnmatch_lines(["hand-off *", "spatial(fuse=1) *"], consecutive=False)


def test_indirect_parametrisation_of_models_and_clusters(pytester: pytest.Pytester) -> None:
    """Models by name or ModelSpec, clusters by count, spec or Cluster, all indirect."""
    pytester.makepyfile(userstrats=STRATEGY_MODULE)
    pytester.makepyfile(test_case="""
        import pytest
        from userstrats import tiny_builder
        from pytest_edgeenergy.zoo import ModelSpec

        @pytest.mark.parametrize("edge_cluster", [2, "rpi4,jetson-tx2"], indirect=True)
        @pytest.mark.parametrize("edge_model", [ModelSpec("mine", tiny_builder, (1, 3, 8, 8))],
                                 indirect=True)
        def test_case(edge_run):
            edge_run()
    """)
    result = run(pytester, "--collect-only", "-q", "--edge-strategies=layer")
    assert ids_of(result) == ["mine-2-layer", "mine-rpi4,jetson-tx2-layer"]
    result = run(pytester, "--edge-strategies=layer")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["mine on 2xrpi4 *", "*", "mine on rpi4+jetson-tx2 *"],
                                consecutive=False)


@pytest.mark.parametrize(("hook_body", "message"), [
    ('return {"other-name": HandOff}',
     "ERROR: hook pytest_edgeenergy_add_strategies in */conftest.py registers "
     "<class 'userstrats.HandOff'> as 'other-name', but its name is 'hand-off'; "
     "the names must match"),
    ("return HandOff",
     "ERROR: hook pytest_edgeenergy_add_strategies in */conftest.py returned "
     "<class 'userstrats.HandOff'>: expected a mapping or a list"),
    ('return [object()]',
     "ERROR: hook pytest_edgeenergy_add_strategies in */conftest.py added <object object at *>, "
     "which has no string 'name'; give strategies a name attribute or return a mapping of "
     "name to factory"),
], ids=["name mismatch", "not a list", "no name"])
def test_a_hook_returning_the_wrong_thing_is_a_usage_error(
        pytester: pytest.Pytester, hook_body: str, message: str) -> None:
    """What a strategy hook returns is checked, and the message names the conftest."""
    pytester.makepyfile(userstrats=STRATEGY_MODULE, test_case=CASE_TEST)
    pytester.makeconftest(f"""
        from userstrats import HandOff

        def pytest_edgeenergy_add_strategies(config):
            {hook_body}
    """)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_model_hook_with_a_bad_input_shape_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A model's input shape must be four positive ints."""
    pytester.makepyfile(userstrats=STRATEGY_MODULE, test_case=CASE_TEST)
    pytester.makeconftest("""
        from userstrats import tiny_builder

        def pytest_edgeenergy_add_models(config):
            return {"tiny": (tiny_builder, (3, 8, 8))}
    """)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: hook pytest_edgeenergy_add_models in */conftest.py: "
                                 "the input shape of model 'tiny' must be four positive ints "
                                 "(N, C, H, W), got (3, 8, 8)"])
