"""The strategies known by name: the four classic ones, ``search``, and any registered later."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from ..errors import PartitionError
from .input_channel import InputChannelStrategy
from .layer import LayerStrategy
from .output_channel import OutputChannelStrategy
from .protocol import Strategy
from .search import SearchStrategy
from .spatial import SpatialStrategy

StrategyFactory = Callable[..., Strategy]

_REGISTRY: dict[str, StrategyFactory] = {
    "layer": LayerStrategy,
    "spatial": SpatialStrategy,
    "output-channel": OutputChannelStrategy,
    "input-channel": InputChannelStrategy,
    "search": SearchStrategy,
}


def list_strategies() -> list[str]:
    """Names of the registered strategies, the four classic ones first."""
    return list(_REGISTRY)


def register_strategy(name: str, factory: StrategyFactory, *, replace: bool = False) -> None:
    """Make ``get_strategy(name, **params)`` call ``factory(**params)``."""
    if not name or not isinstance(name, str):
        raise ValueError(f"a strategy name must be a non-empty string, got {name!r}")
    if name in _REGISTRY and not replace and _REGISTRY[name] is not factory:
        raise ValueError(f"strategy {name!r} is already registered")
    _REGISTRY[name] = factory


def unregister_strategy(name: str) -> None:
    """Forget a registered strategy (for tests and plugins that clean up)."""
    _REGISTRY.pop(name, None)


def get_strategy(name: str, **params: Any) -> Strategy:
    """A strategy instance by name, e.g. ``get_strategy("spatial", fuse=3)``."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise PartitionError(f"unknown strategy '{name}'{hint}; known strategies: "
                             f"{', '.join(_REGISTRY)}")
    try:
        return _REGISTRY[name](**params)
    except TypeError as exc:
        raise PartitionError(f"strategy '{name}' does not take parameters {params}: {exc}") from exc


def resolve_strategy(value: object,
                     lookup: Callable[[str], Strategy] | None = None) -> Strategy:
    """A strategy object from a name, a strategy class or an object implementing
    :class:`~.protocol.Strategy`; :class:`PartitionError` for anything else.

    Names are looked up with ``lookup`` (default :func:`get_strategy`): the pytest plugin
    passes its own registry, which also holds strategies that conftest files add.
    """
    if isinstance(value, str):
        return (lookup or get_strategy)(value)
    if isinstance(value, type):
        value = value()
    if isinstance(value, Strategy):
        return value
    raise PartitionError(f"strategy {value!r} is neither a strategy name nor an object with "
                         "a 'name', 'params' and a 'plan(graph, cluster)' method")
