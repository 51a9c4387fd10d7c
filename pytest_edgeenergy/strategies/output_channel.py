"""Output-channel partitioning: each device holds a slice of every layer's filters.

A convolution or linear layer is split by output channels in proportion to device speed; the
device computes its slice from the layer's full input, which it gathers from the others (an
all-gather). Channel-wise layers (pools, activations, residual adds, concatenations, flatten,
reorg) follow the slices of their input, so they need no communication. A grouped or depthwise
convolution needs only the input channels of its own groups.
"""

from __future__ import annotations

from ..graph.box import split_ranges
from ..graph.layergraph import LayerGraph
from ..graph.ops import Cat, Conv, Linear
from ..planner import PlanBuilder
from .protocol import BuilderStrategy


class OutputChannelStrategy(BuilderStrategy):
    """Split filters (output channels) of every conv and linear layer across devices."""

    name = "output-channel"

    def assign(self, b: PlanBuilder, graph: LayerGraph) -> None:
        for layer in graph.layers:
            op = layer.op
            if isinstance(op, Conv | Linear | Cat):
                sizes = b.split_channels(layer, split_ranges(layer.out_shape[0], b.speeds))
                b.note(layer, f"output channels split {sizes}")
            else:
                b.follow_or_device_0(layer)
