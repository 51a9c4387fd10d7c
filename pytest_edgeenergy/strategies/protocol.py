"""What a partitioning strategy is: a pass from a layer graph and a cluster to a plan.

A strategy never executes anything. It decides which device computes which region of which
layer, through a :class:`~pytest_edgeenergy.planner.PlanBuilder`, which derives every transfer
those decisions imply. A new strategy is a class with a ``name``, a ``params`` mapping and a
``plan`` method; subclassing :class:`BuilderStrategy` and writing ``assign`` is the short way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from ..graph.layergraph import LayerGraph
from ..plan import Plan
from ..planner import PlanBuilder, collector_paused


@runtime_checkable
class ClusterLike(Protocol):
    """What a strategy needs to know of a cluster: how many devices, how fast each is."""

    @property
    def speeds(self) -> tuple[float, ...]:
        """Relative compute speed per device (the fastest is 1.0)."""
        ...

    def __len__(self) -> int: ...


@runtime_checkable
class Strategy(Protocol):
    """The protocol every partitioning strategy implements."""

    name: str
    params: dict[str, Any]

    def plan(self, graph: LayerGraph, cluster: ClusterLike) -> Plan:
        """Partition ``graph`` over ``cluster``; nothing is executed."""
        ...


class BuilderStrategy:
    """Base for strategies written as placement decisions on a :class:`PlanBuilder`."""

    name: str = "base"

    def __init__(self) -> None:
        #: the strategy's parameters, shown in plans and reports; subclasses that take
        #: parameters set them here
        self.params: dict[str, Any] = {}

    def plan(self, graph: LayerGraph, cluster: ClusterLike) -> Plan:
        """Build a plan by calling :meth:`assign` on a fresh builder."""
        speeds: Sequence[float] = cluster.speeds
        with collector_paused():
            builder = PlanBuilder(graph, speeds, self.name, self.params)
            self.assign(builder, graph)
            return builder.finish()

    def assign(self, b: PlanBuilder, graph: LayerGraph) -> None:
        """Place every layer of ``graph`` (in topological order) through ``b``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"
