"""The plugin's session state, held in ``config.stash[STATE_KEY]`` (never on ``config``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Protocol

import pytest

from ..cluster import Cluster
from ..equivalence import ReferenceCache
from .baseline import Baseline
from .options import DEFAULT_MODELS, EdgeSettings, check_names
from .registry import EdgeRegistry, EntryPoints, collect_registry, hook_plugins
from .tracking import Selection

__all__ = ["ALL", "STATE_KEY", "EdgeState"]

ALL = "all"
"""The word that names every registered model or strategy in ``--edge-models``."""


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


@dataclasses.dataclass
class EdgeState:
    """Settings, the clusters they name, the registries, the reference-output cache, the
    baseline read at start-up and which edge tests this run selected."""

    settings: EdgeSettings
    entry_points: EntryPoints
    clusters: tuple[Cluster, ...]
    baseline: Baseline | None = None
    selection: Selection = dataclasses.field(default_factory=Selection)
    # Registries by the plugins that implement the hooks: conftest files apply to their
    # own folder only, so two test files may see different registries.
    registries: dict[tuple[int, ...], EdgeRegistry] = dataclasses.field(default_factory=dict)
    # Unpartitioned outputs per model object, weights and input: each runs once.
    references: ReferenceCache = dataclasses.field(default_factory=ReferenceCache)
    reference_runs: int = 0

    def registry(self, config: pytest.Config, node: Located | None = None) -> EdgeRegistry:
        """The registry seen from ``node``'s file, or by every plugin loaded so far."""
        hooks: Any = config.hook if node is None else node.session.gethookproxy(node.path)
        key = hook_plugins(hooks)
        registry = self.registries.get(key)
        if registry is None:
            registry = collect_registry(config, self.settings.device_dirs, self.entry_points,
                                        hooks)
            self.registries[key] = registry
        return registry

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
        check_names(self.settings, "edge_models", "model",
                    [m for m in self.settings.models or () if m != ALL],
                    registry.model_names())
        check_names(self.settings, "edge_strategies", "strategy",
                    [s for s in self.settings.strategies or () if s != ALL],
                    registry.strategy_names())


STATE_KEY = pytest.StashKey[EdgeState]()
"""Where the session's :class:`EdgeState` lives."""
