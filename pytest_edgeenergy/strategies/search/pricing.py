"""Prices computed once: each segment in each layout, and each change of layout between two.

A segment's price comes from a plan fragment: every device is given the segment's input tensor
whole (so nothing is fetched), the layout places the segment's layers, and the fragment is
simulated and estimated like any plan. The fragment also records which regions of the input
each device read (the layout's *need*) and where the output's pieces ended (its *exit*).

A transition's price comes from another fragment: the pieces of the previous segment's exit are
placed where they are, and the PlanBuilder makes every device hold what the next layout needs,
deriving the transfers exactly as it does in a whole plan. Prices are cached by (exit, need).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ...cluster import Cluster
from ...energy.protocol import EnergyModel
from ...energy.scenario import Scenario
from ...errors import PartitionError
from ...graph.box import Box
from ...graph.layergraph import LayerGraph
from ...plan import Plan, Task
from ...planner import PlanBuilder
from .layouts import Layout
from .objective import Measured, measure
from .segments import Span

__all__ = ["Cost", "Option", "Pricer", "Regions"]

Regions = tuple[tuple[int, Box], ...]
"""(device, region) pairs of one tensor."""


def _add(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))


@dataclass(frozen=True, slots=True)
class Cost:
    """Per device: dynamic joules (compute and communication), weight bytes held and the most
    activation bytes held at once; and seconds. Joules, weights and seconds add up along a
    sequence of segments (segments are assumed not to overlap in time); activations peak."""

    device_j: tuple[float, ...]
    time_s: float
    weight_bytes: tuple[float, ...]
    activation_bytes: tuple[float, ...]

    def __add__(self, other: Cost) -> Cost:
        return Cost(_add(self.device_j, other.device_j), self.time_s + other.time_s,
                    _add(self.weight_bytes, other.weight_bytes),
                    tuple(max(a, b) for a, b in zip(self.activation_bytes,
                                                     other.activation_bytes, strict=True)))

    @staticmethod
    def zero(n: int) -> Cost:
        """Nothing spent on ``n`` devices."""
        return Cost((0.0,) * n, 0.0, (0.0,) * n, (0.0,) * n)

    @staticmethod
    def of(m: Measured) -> Cost:
        """The cost a fragment measured."""
        return Cost(m.device_j, m.time_s, tuple(float(w) for w in m.weight_bytes),
                    tuple(float(a) for a in m.activation_bytes))

    def fits(self, memory_bytes: Sequence[int]) -> bool:
        """Whether every device's weights plus activation peak fit in ``memory_bytes``."""
        return all(w + a <= m for w, a, m in zip(self.weight_bytes, self.activation_bytes,
                                                  memory_bytes, strict=True))


@dataclass(frozen=True, slots=True)
class Option:
    """One segment in one layout, priced."""

    span: Span
    layout: Layout
    cost: Cost
    need: Regions
    exit: Regions


@dataclass(slots=True)
class Pricer:
    """Prices segments and transitions for one graph, cluster and energy model."""

    graph: LayerGraph
    cluster: Cluster
    energy_model: str | EnergyModel
    scenario: Scenario | str | None = None
    fragments: int = 0  # fragments built and simulated
    _transitions: dict[tuple[str, Regions, Regions], Cost] = field(default_factory=dict)

    def _builder(self) -> PlanBuilder:
        return PlanBuilder(self.graph, self.cluster.speeds, "search", {})

    def _measure(self, b: PlanBuilder, output: str) -> Measured:
        plan = Plan(
            strategy="search", params={}, n_devices=b.n, speeds=b.speeds,
            input_name=self.graph.input_name, input_shape=tuple(self.graph.input_shape),
            output=output, shapes=dict(b.shapes), layer_kinds={}, graph_macs=0,
            graph_weight_bytes=0, pieces=list(b.pieces), steps=list(b.steps),
            frees=[()] * len(b.steps), output_pieces=())
        self.fragments += 1
        return measure(plan, self.cluster, self.energy_model, self.scenario, fragment=True)

    def _place(self, b: PlanBuilder, tensor: str, regions: Regions) -> None:
        if tensor == self.graph.input_name:  # the builder starts with it on device 0
            regions = tuple(r for r in regions if r != (0, Box.full(b.shapes[tensor])))
        for device, box in regions:
            b.place(device, tensor, box)

    def option(self, span: Span, layout: Layout) -> Option | None:
        """``span`` placed in ``layout``, priced; None when the layout cannot place it."""
        b = self._builder()
        full = Box.full(self.graph.shape(span.entry))
        self._place(b, span.entry, tuple((d, full) for d in range(b.n)))
        first = len(b.steps)
        try:
            layout.apply(b, self.graph, self.graph.layers[span.start:span.stop])
        except PartitionError:
            return None
        need: list[tuple[int, Box]] = []
        for s in b.steps[first:]:
            if isinstance(s, Task):
                for tensor, ideal in zip(s.inputs, s.in_boxes, strict=True):
                    if tensor == span.entry and ideal is not None:
                        region = (s.device, ideal.clip(b.shapes[tensor]))
                        if not region[1].empty and region not in need:
                            need.append(region)
        exit_ = tuple((p.device, p.box) for p in b.produced_pieces(span.exit))
        return Option(span, layout, Cost.of(self._measure(b, span.exit)), tuple(need), exit_)

    def transition(self, tensor: str, exit_: Regions, need: Regions) -> Cost:
        """What it costs to go from ``tensor`` held as ``exit_`` to every device holding its
        ``need``; INFEASIBLE if the planner cannot derive it from those pieces alone."""
        key = (tensor, exit_, need)
        cost = self._transitions.get(key)
        if cost is None and all(any(d == e and held.contains(box) for e, held in exit_)
                                for d, box in need):
            cost = self._transitions[key] = Cost.zero(len(self.cluster))
        if cost is None:
            b = self._builder()
            self._place(b, tensor, exit_)
            try:
                for device, box in need:
                    b.ensure(device, tensor, box)
            except PartitionError:  # a recomputation reaching back before the segment
                inf = (float("inf"),) * b.n
                cost = Cost(inf, float("inf"), inf, inf)
            else:
                cost = Cost.of(self._measure(b, tensor)) if b.steps else Cost.zero(b.n)
            self._transitions[key] = cost
        return cost

    def gather(self, exit_: Regions) -> Cost:
        """What it costs to bring the graph's output from ``exit_`` to device 0."""
        out = self.graph.output
        return self.transition(out, exit_, ((0, Box.full(self.graph.shape(out))),))

    def origin(self) -> Regions:
        """The input image, whole on device 0."""
        return ((0, Box.full(self.graph.shape(self.graph.input_name))),)

    def path(self, options: Sequence[Option]) -> Cost:
        """The cost of a whole sequence of segments, from the input to the gathered output."""
        total = Cost.zero(len(self.cluster))
        held = self.origin()
        for opt in options:
            total = total + self.transition(opt.span.entry, held, opt.need) + opt.cost
            held = opt.exit
        return total + self.gather(held)
