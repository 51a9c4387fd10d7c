"""What the plugin parametrises over: strategies, models and device folders, from three sources.

1. the library's own registries (the four classic strategies, the model zoo, the shipped
   device profiles),
2. installed packages, through the entry-point groups ``pytest_edgeenergy.strategies``,
   ``pytest_edgeenergy.models`` and ``pytest_edgeenergy.devices``,
3. plugins and ``conftest.py`` files, through the hooks in :mod:`.hookspecs`.

Strategies and models of the first two sources are themselves the ``trylast`` implementation
of the registration hooks (:class:`DefaultSources`), as pytest-xdist's default scheduler is of
``pytest_xdist_make_scheduler``: every strategy and model takes the one path through pluggy.

Every entry remembers where it came from, so a name added twice with different objects is a
usage error that names both origins.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import inspect
import types
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from torch import nn

from .. import zoo
from ..strategies import get_strategy, list_strategies
from ..strategies.protocol import Strategy
from ..zoo import ModelSpec
from ..zoo.registry import build_seeded

__all__ = [
    "DEVICES_GROUP",
    "MODELS_GROUP",
    "STRATEGIES_GROUP",
    "DefaultSources",
    "EdgeRegistry",
    "ModelEntry",
    "StrategyEntry",
    "collect_registry",
    "hook_plugins",
    "load_entry_points",
]

STRATEGIES_GROUP = "pytest_edgeenergy.strategies"
"""Entry-point group of installed strategies: ``name = "package.module:StrategyClass"``."""
MODELS_GROUP = "pytest_edgeenergy.models"
"""Entry-point group of installed models: ``name = "package.module:model_spec"``."""
DEVICES_GROUP = "pytest_edgeenergy.devices"
"""Entry-point group of installed device profile folders: ``name = "package.profiles"``."""

BUILT_IN = "built-in"


@dataclasses.dataclass(frozen=True)
class StrategyEntry:
    """A strategy by name: ``factory(**params)`` makes one; ``origin`` says who added it."""

    name: str
    factory: Callable[..., Strategy]
    origin: str
    source_object: object = None  # what was registered, to tell a repeat from a conflict


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A model by name: ``build(seed)`` makes it in eval mode, for ``input_shape`` inputs."""

    name: str
    build: Callable[[int], nn.Module]
    input_shape: tuple[int, ...]
    origin: str
    source_object: object = None


@dataclasses.dataclass(frozen=True)
class EntryPoints:
    """The objects the three entry-point groups load, with their origins."""

    strategies: tuple[tuple[str, object, str], ...]
    models: tuple[tuple[str, object, str], ...]
    devices: tuple[tuple[str, object, str], ...]


@dataclasses.dataclass(frozen=True)
class EdgeRegistry:
    """Everything that can be named on the command line, with where each came from."""

    strategies: dict[str, StrategyEntry]
    models: dict[str, ModelEntry]
    device_dirs: tuple[Path, ...]

    def strategy_names(self) -> list[str]:
        """Registered strategy names, the four classic ones first."""
        return list(self.strategies)

    def model_names(self) -> list[str]:
        """Registered model names, sorted."""
        return sorted(self.models)


def _seeded(builder: Callable[[], nn.Module], name: str) -> Callable[[int], nn.Module]:
    """``builder`` run with torch's generator seeded, as the zoo does, in eval mode."""
    return lambda seed: build_seeded(builder, name, seed)


def _zoo_builder(name: str) -> Callable[[int], nn.Module]:
    return lambda seed: zoo.build_model(name, seed)


def _strategy_factory(name: str) -> Callable[..., Strategy]:
    return lambda **params: get_strategy(name, **params)


def _describe(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    owner = f" of {dist.name} {dist.version}" if dist is not None else ""
    return f"entry point '{ep.name} = {ep.value}' in group '{ep.group}'{owner}"


def load_entry_points() -> EntryPoints:
    """Load every entry point of the three groups; a broken one is a usage error."""
    loaded: dict[str, list[tuple[str, object, str]]] = {}
    for group in (STRATEGIES_GROUP, MODELS_GROUP, DEVICES_GROUP):
        items = loaded.setdefault(group, [])
        for ep in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
            try:
                obj = ep.load()
            except Exception as exc:
                raise pytest.UsageError(f"{_describe(ep)} failed to load: "
                                        f"{type(exc).__name__}: {exc}") from None
            items.append((ep.name, obj, _describe(ep)))
    return EntryPoints(tuple(loaded[STRATEGIES_GROUP]), tuple(loaded[MODELS_GROUP]),
                       tuple(loaded[DEVICES_GROUP]))


def _strategy_entry(name: str | None, obj: object, origin: str) -> StrategyEntry:
    """A strategy entry from a class, a factory or an object, as the hook docs describe (an
    entry that is already one, with its own origin, as it is)."""
    if isinstance(obj, StrategyEntry):
        return obj
    own = getattr(obj, "name", None)
    if name is None:
        if not isinstance(own, str) or not own:
            raise pytest.UsageError(f"{origin} added {obj!r}, which has no string 'name'; "
                                    "give strategies a name attribute or return a mapping "
                                    "of name to factory")
        name = own
    elif isinstance(own, str) and own != name and inspect.isclass(obj):
        raise pytest.UsageError(f"{origin} registers {obj!r} as '{name}', but its name is "
                                f"'{own}'; the names must match")
    factory: Callable[..., Strategy]
    if not inspect.isclass(obj) and isinstance(obj, Strategy):
        instance: Strategy = obj

        def same_object(**params: Any) -> Strategy:
            if params:
                raise TypeError(f"strategy object {instance!r} takes no parameters")
            return instance

        factory = same_object
    elif callable(obj):  # a strategy class, or a factory
        factory = obj
    else:
        raise pytest.UsageError(f"{origin} added {obj!r} as strategy '{name}': expected a "
                                "strategy class, a factory or an object with a plan() method")
    return StrategyEntry(name, factory, origin, obj)


def _model_entry(name: str | None, obj: object, origin: str) -> ModelEntry:
    """A model entry from a ModelSpec, a ``(builder, input_shape)`` pair or a builder with an
    ``input_shape`` attribute (an entry that is already one, with its own origin, as it is)."""
    builder: object
    shape: object
    if isinstance(obj, ModelEntry):
        return obj
    if isinstance(obj, ModelSpec):
        name = name or obj.name
        builder, shape = obj.builder, obj.input_shape
    elif isinstance(obj, tuple) and len(obj) == 2:
        builder, shape = obj
    elif callable(obj) and hasattr(obj, "input_shape"):
        builder, shape = obj, obj.input_shape
    else:
        raise pytest.UsageError(f"{origin} added model {name or obj!r} as {obj!r}: expected a "
                                "ModelSpec or a (builder, input_shape) pair")
    if name is None or not isinstance(name, str):
        raise pytest.UsageError(f"{origin} added a model without a name: {obj!r}")
    if not callable(builder):
        raise pytest.UsageError(f"{origin}: the builder of model '{name}' is not callable")
    dims = tuple(shape) if isinstance(shape, Iterable) else ()
    if len(dims) != 4 or not all(isinstance(s, int) and s > 0 for s in dims):
        raise pytest.UsageError(f"{origin}: the input shape of model '{name}' must be four "
                                f"positive ints (N, C, H, W), got {shape!r}")
    return ModelEntry(name, _seeded(builder, name), dims, origin, obj)


def _items(result: object, origin: str) -> Iterable[tuple[str | None, object]]:
    if result is None:
        return []
    if isinstance(result, Mapping):
        return [(str(k), v) for k, v in result.items()]
    if isinstance(result, Iterable) and not isinstance(result, str | bytes):
        return [(None, v) for v in result]
    raise pytest.UsageError(f"{origin} returned {result!r}: expected a mapping or a list")


def _device_dirs(obj: object, origin: str) -> list[Path]:
    if callable(obj) and not isinstance(obj, type):
        obj = obj()
    if isinstance(obj, types.ModuleType):
        where = getattr(obj, "__path__", None) or [str(Path(str(obj.__file__)).parent)]
        return [Path(str(p)) for p in where]
    if isinstance(obj, str | Path):
        return [Path(obj)]
    if isinstance(obj, Iterable):
        return [p for item in obj for p in _device_dirs(item, origin)]
    raise pytest.UsageError(f"{origin} gave {obj!r}: expected a folder of device profiles")


class DefaultSources:
    """The built-in strategies and models, then those of installed packages' entry points, each
    entry with its own origin: the ``trylast`` implementation of the registration hooks.

    pluggy lists ``trylast`` implementations first (it calls them last), so these entries come
    first in a registry, before those of plugins and conftest files, in the order they are
    listed here.
    """

    def __init__(self, entry_points: EntryPoints) -> None:
        self.entry_points = entry_points

    @pytest.hookimpl(trylast=True)
    def pytest_edgeenergy_add_strategies(self, config: pytest.Config) -> list[StrategyEntry]:
        """The library's strategies, then the packages' ones."""
        built_in = [StrategyEntry(name, _strategy_factory(name), BUILT_IN, name)
                    for name in list_strategies()]
        return built_in + [_strategy_entry(name, obj, origin)
                           for name, obj, origin in self.entry_points.strategies]

    @pytest.hookimpl(trylast=True)
    def pytest_edgeenergy_add_models(self, config: pytest.Config) -> list[ModelEntry]:
        """The model zoo, then the packages' models."""
        built_in = [ModelEntry(name, _zoo_builder(name), tuple(zoo.model_input_shape(name)),
                               BUILT_IN, name) for name in zoo.list_models()]
        return built_in + [_model_entry(name, obj, origin)
                           for name, obj, origin in self.entry_points.models]


HOOK_NAMES = ("pytest_edgeenergy_add_strategies", "pytest_edgeenergy_add_models",
              "pytest_edgeenergy_add_devices")


def hook_plugins(hooks: Any) -> tuple[int, ...]:
    """Identities of the plugins that implement the plugin's hooks in ``hooks`` (a relay)."""
    return tuple(id(impl.plugin) for name in HOOK_NAMES
                 for impl in getattr(hooks, name).get_hookimpls())


def _hook_results(config: pytest.Config, hooks: Any,
                  hook_name: str) -> list[tuple[str, object]]:
    """Each implementation's result with the plugin (or conftest path) that gave it.

    pluggy calls every implementation (arguments, wrappers and all); asking it for one
    plugin's at a time (``subset_hook_caller``, as pytest does for conftest files) is what
    lets an error name the plugin or conftest file a bad result came from.
    """
    manager = config.pluginmanager
    everyone = [impl.plugin for impl in getattr(manager.hook, hook_name).get_hookimpls()]
    out: list[tuple[str, object]] = []
    for impl in getattr(hooks, hook_name).get_hookimpls():
        others = [p for p in everyone if p is not impl.plugin]
        for result in manager.subset_hook_caller(hook_name, others)(config=config):
            out.append((f"hook {hook_name} in {impl.plugin_name}", result))
    return out


def _add(table: dict[str, Any], entry: StrategyEntry | ModelEntry, kind: str) -> None:
    old = table.get(entry.name)
    if old is not None and old.source_object is not entry.source_object:
        raise pytest.UsageError(f"{kind} '{entry.name}' is added twice: by {old.origin} and by "
                                f"{entry.origin}; rename one of them")
    table.setdefault(entry.name, entry)


def collect_registry(config: pytest.Config, user_dirs: Iterable[Path],
                     entry_points: EntryPoints, hooks: Any = None) -> EdgeRegistry:
    """Merge every implementation of the registration hooks (:class:`DefaultSources` among
    them, once registered) and the device folders of the entry points.

    ``hooks`` is the hook relay to ask (``session.gethookproxy(path)`` for the conftest
    files that apply to one path); by default every plugin and conftest loaded so far.
    """
    hooks = config.hook if hooks is None else hooks
    strategies: dict[str, StrategyEntry] = {}
    for origin, result in _hook_results(config, hooks, "pytest_edgeenergy_add_strategies"):
        for name_or_none, obj in _items(result, origin):
            _add(strategies, _strategy_entry(name_or_none, obj, origin), "strategy")
    models: dict[str, ModelEntry] = {}
    for origin, result in _hook_results(config, hooks, "pytest_edgeenergy_add_models"):
        for name_or_none, obj in _items(result, origin):
            _add(models, _model_entry(name_or_none, obj, origin), "model")

    dirs: list[Path] = list(user_dirs)
    for origin, result in _hook_results(config, hooks, "pytest_edgeenergy_add_devices"):
        dirs.extend(_device_dirs(result, origin))
    for _name, obj, origin in entry_points.devices:
        dirs.extend(_device_dirs(obj, origin))
    return EdgeRegistry(strategies, models, tuple(dict.fromkeys(dirs)))
