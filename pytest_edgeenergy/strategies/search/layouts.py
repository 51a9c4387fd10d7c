"""The layouts a segment of the network can take, each applied through the PlanBuilder.

A layout places the layers of one segment; the transfers between segments with different
layouts are whatever :class:`~pytest_edgeenergy.planner.PlanBuilder` derives, as for any
strategy. The channel and spatial layouts reuse the classic strategies' own placement code on
a view of the graph that holds only the segment's layers, with the segment's split proportions
in place of the device speeds while it is placed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from ...errors import PartitionError
from ...graph.layergraph import Layer, LayerGraph
from ...planner import PlanBuilder
from ..input_channel import InputChannelStrategy
from ..layer import LayerStrategy
from ..output_channel import OutputChannelStrategy
from ..protocol import BuilderStrategy
from ..spatial import SpatialStrategy

__all__ = ["CLASSIC", "Layout", "apply_classic", "segment_view", "windows"]

#: The classic strategies with their default parameters: points of the search space.
CLASSIC: dict[str, type[BuilderStrategy]] = {
    "layer": LayerStrategy, "spatial": SpatialStrategy,
    "output-channel": OutputChannelStrategy, "input-channel": InputChannelStrategy,
}


def windows(layers: Sequence[Layer]) -> int:
    """How many sliding-window layers (convolutions, pools) ``layers`` hold."""
    return sum(1 for layer in layers if layer.op.sliding_window)


def segment_view(graph: LayerGraph, layers: Sequence[Layer]) -> LayerGraph:
    """``graph`` with only ``layers`` to place (consumers, shapes and output stay the whole
    graph's, so a strategy still sees who reads a tensor after the segment)."""
    view = copy.copy(graph)
    view.layers = list(layers)
    return view


@contextmanager
def split_shares(b: PlanBuilder, shares: tuple[float, ...] | None) -> Iterator[None]:
    """Let the classic placement code split by ``shares`` instead of the device speeds."""
    saved = b.speeds
    if shares is not None:
        b.speeds = shares
    try:
        yield
    finally:
        b.speeds = saved


@dataclass(frozen=True, slots=True)
class Layout:
    """How one segment is placed.

    ``kind`` is ``spatial`` (bands of rows, fused stacks of ``fuse`` window layers, 0 meaning
    the whole segment is one stack), ``output-channel``, ``input-channel`` or ``device`` (every
    layer whole on ``device``; consecutive segments on different devices are a pipeline cut).
    ``shares`` are the split proportions (None: the device speeds), named ``shares_name``.
    """

    kind: str
    fuse: int = 0
    shares: tuple[float, ...] | None = None
    shares_name: str = "speed"
    device: int = 0

    def describe(self) -> str:
        """Short text for plans and reports, e.g. ``spatial fuse=2 (energy split)``."""
        if self.kind == "device":
            return f"whole on device {self.device}"
        split = "" if self.shares_name == "speed" else f" ({self.shares_name} split)"
        if self.kind == "spatial":
            depth = "all" if self.fuse == 0 else str(self.fuse)
            return f"spatial fuse={depth}{split}"
        return f"{self.kind}{split}"

    def apply(self, b: PlanBuilder, graph: LayerGraph, layers: Sequence[Layer]) -> None:
        """Place ``layers`` (a contiguous run of ``graph.layers``) through ``b``."""
        if self.kind == "device":
            for layer in layers:
                b.compute(self.device, layer)
            return
        view = segment_view(graph, layers)
        strategy: BuilderStrategy
        if self.kind == "spatial":
            strategy = SpatialStrategy(fuse=self.fuse or max(1, windows(layers)))
        elif self.kind == "output-channel":
            strategy = OutputChannelStrategy()
        elif self.kind == "input-channel":
            strategy = InputChannelStrategy()
        else:
            raise PartitionError(f"strategy 'search': unknown segment layout {self.kind!r}")
        with split_shares(b, self.shares):
            strategy.assign(b, view)


def apply_classic(name: str, b: PlanBuilder, graph: LayerGraph) -> None:
    """Place the whole graph as the classic strategy ``name`` (default parameters) does."""
    CLASSIC[name]().assign(b, graph)
