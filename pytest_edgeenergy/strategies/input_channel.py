"""Input-channel partitioning: each device holds a slice of every filter's input channels.

A device convolves its slice of the input channels with the matching slice of every filter and
produces a partial sum over the full output. Partial sums are then reduced: reduce-scattered by
output channel (each device sums one channel slice, adds the bias, applies the activation), so
that the next layer finds its input-channel slices where it needs them; the model's last layer
is reduced on device 0. Bias and non-linearity come only after the reduction.

A grouped or depthwise convolution is split along whole groups: every output is then complete
on one device, and needs no reduction. Channel-wise layers follow the slices of their input.
"""

from __future__ import annotations

from ..graph.box import Range, split_ranges
from ..graph.layergraph import Layer, LayerGraph
from ..graph.ops import Cat, Conv, Linear
from ..planner import PlanBuilder
from .protocol import BuilderStrategy


class InputChannelStrategy(BuilderStrategy):
    """Split every filter's input channels across devices; reduce partial sums."""

    name = "input-channel"

    def assign(self, b: PlanBuilder, graph: LayerGraph) -> None:
        for layer in graph.layers:
            op = layer.op
            if isinstance(op, Conv) and op.groups > 1:
                ranges = split_ranges(op.out_channels, b.speeds, unit=op.out_per_group)
                sizes = b.split_channels(layer, ranges)
                b.note(layer, f"grouped: output channels split {sizes} on whole groups of "
                              f"{op.out_per_group}, no reduction")
            elif isinstance(op, Conv | Linear):
                self._split(b, layer, op.in_channels)
            elif isinstance(op, Cat):
                sizes = b.split_channels(layer, split_ranges(layer.out_shape[0], b.speeds))
                b.note(layer, f"channels split {sizes}")
            else:
                b.follow_or_device_0(layer)

    def _input_ranges(self, b: PlanBuilder, layer: Layer, in_channels: int) -> list[Range]:
        """Input-channel slices: where the input already lies when it is a clean split over as
        many devices as a speed-proportional split would use, else speed-proportional."""
        wanted = split_ranges(in_channels, b.speeds)
        there = b.channel_split_of(layer.inputs[0])
        used = sum(1 for r in wanted if r[1] > r[0])
        if there is None or sum(1 for r in there if r[1] > r[0]) != used:
            return wanted
        return there

    def _split(self, b: PlanBuilder, layer: Layer, cin: int) -> None:
        ranges = self._input_ranges(b, layer, cin)
        contributors = [d for d, r in enumerate(ranges) if r[1] > r[0]]
        if len(contributors) == 1:
            b.compute(contributors[0], layer)
            b.note(layer, f"one input slice only: whole on device {contributors[0]}")
            return
        for d in contributors:
            b.partial(d, layer, ranges[d])
        sizes = "/".join(str(r[1] - r[0]) for r in ranges)
        how = b.reduce_partials(layer, contributors)
        b.note(layer, f"input channels split {sizes}; partial sums {how}")
