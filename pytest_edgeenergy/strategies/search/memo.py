"""Searches already made in this process, by what decides their outcome.

A search's result depends on the graph's *structure* (layer kinds, their settings, tensor and
weight shapes), the cluster's profiles, the search's parameters, the energy model and the
scenario; never on the weights' values. A test session partitions the same model with the same
strategy many times (the suite's energy matrix, its benchmarks, an example, nested runs), and
each search prices thousands of plan fragments. The memo keeps what the combination chose (the
segments and layouts, or the classic strategy kept), so the next identical search rebuilds its
plan with the PlanBuilder without pricing anything again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from ...cluster import Cluster
from ...energy.protocol import EnergyModel
from ...energy.registry import get_energy_model
from ...energy.scenario import Scenario, as_scenario
from ...graph.layergraph import LayerGraph
from .pricing import Option

__all__ = ["MEMO", "MEMO_SIZE", "Remembered", "SearchMemo", "search_key", "structure_key"]

MEMO_SIZE = 64
"""Searches remembered per process; the oldest is forgotten first."""


def _value_key(value: object) -> Hashable:
    """A hashable stand-in for one attribute of an op: tensors by shape and dtype only."""
    if isinstance(value, Tensor):
        return ("tensor", tuple(value.shape), str(value.dtype))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(_value_key(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k), _value_key(v)) for k, v in value.items())))
    try:
        hash(value)
    except TypeError:
        return ("repr", repr(value))
    return value  # hashable: checked just above


def _attributes(op: object) -> tuple[tuple[str, Hashable], ...]:
    names: list[str] = sorted(getattr(op, "__dict__", {}))
    for cls in type(op).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        names.extend(sorted([slots] if isinstance(slots, str) else slots))
    seen: set[str] = set()
    out = []
    for name in names:
        if name in seen or name.startswith("__"):
            continue
        seen.add(name)
        if hasattr(op, name):
            out.append((name, _value_key(getattr(op, name))))
    return tuple(out)


def structure_key(graph: LayerGraph) -> Hashable:
    """Everything of ``graph`` a plan's cost depends on: layers, settings and shapes, not the
    weights' values."""
    return (graph.input_name, tuple(graph.input_shape), graph.output,
            tuple((layer.name, layer.inputs, layer.post, type(layer.op).__qualname__,
                   _attributes(layer.op)) for layer in graph.layers))


def search_key(graph: LayerGraph, cluster: Cluster, params: dict[str, Any],
               energy_model: str | EnergyModel,
               scenario: Scenario | str | None) -> Hashable | None:
    """The memo's key of one search, or None when it cannot be told apart safely (an energy
    model given as an object rather than a registered name)."""
    if not isinstance(energy_model, str):
        return None
    model = get_energy_model(energy_model)  # re-registering a name gives another object
    conditions: Scenario = as_scenario(scenario)
    key = (structure_key(graph), cluster.devices, tuple(sorted(params.items())),
           energy_model, id(model), conditions)
    try:
        hash(key)
    except TypeError:  # a profile or scenario field that cannot be hashed: do not remember
        return None
    return key


@dataclass(frozen=True)
class Remembered:
    """What a search chose: the segments' options (None: a classic strategy kept), the classic
    strategy kept (None: the options), and its report."""

    path: tuple[Option, ...] | None
    classic: str | None
    report: Any  # a SearchReport; Any keeps this module below strategy.py


class SearchMemo:
    """The last :data:`MEMO_SIZE` searches of this process."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, Remembered] = OrderedDict()

    def get(self, key: Hashable | None) -> Remembered | None:
        """The search made under ``key``, if remembered."""
        if key is None or key not in self._entries:
            return None
        self._entries.move_to_end(key)
        return self._entries[key]

    def put(self, key: Hashable | None, entry: Remembered) -> None:
        """Remember ``entry`` under ``key`` (nothing for a None key)."""
        if key is None:
            return
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every search."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


MEMO = SearchMemo()
"""The process's memo, shared by every :class:`~.strategy.SearchStrategy`."""
