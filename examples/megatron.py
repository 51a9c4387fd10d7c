"""A user strategy: Megatron-style pairs of an output-channel and an input-channel split.

Megatron-LM splits a transformer's two-layer MLP so that the first layer is split by output
columns and the second by input rows: the first layer's output slices are exactly the input
slices the second needs, so a pair costs one all-gather (of the pair's input) and one
reduction (of its output) instead of an all-gather per layer. The same pairing applies to the
convolutions and linear layers of a CNN:

* a layer whose input is full (or comes from a reduction) is split by **output channels**:
  every device computes its slice of the filters from the full input, which the planner
  gathers; its output is "fresh": channel slices, one per device;
* the next layer, if its input is such a fresh channel split, is split by **input channels**
  along those very slices: no transfer at all; each device computes a partial sum, and the
  partial sums are reduce-scattered by output channel (the model's last layer is reduced on
  device 0);
* depthwise and grouped convolutions split along whole groups and keep their input's
  freshness; channel-wise layers (activations, pools, adds, concatenations, flatten) follow
  their input's slices; anything else runs whole on device 0.

It is written as a :class:`~pytest_edgeenergy.strategies.BuilderStrategy`: the strategy only
says which device computes which region; the planner derives every transfer.
"""

from __future__ import annotations

from pytest_edgeenergy.graph.box import Range, split_ranges
from pytest_edgeenergy.graph.layergraph import Layer, LayerGraph
from pytest_edgeenergy.graph.ops import Conv, Linear
from pytest_edgeenergy.planner import PlanBuilder
from pytest_edgeenergy.strategies import BuilderStrategy

__all__ = ["MegatronStrategy"]


class MegatronStrategy(BuilderStrategy):
    """Pair an output-channel split with the next layer's input-channel split."""

    name = "megatron"

    def assign(self, b: PlanBuilder, graph: LayerGraph) -> None:
        """Place every layer; ``fresh`` holds the tensors split by an output-channel layer."""
        fresh: set[str] = set()
        for layer in graph.layers:
            op = layer.op
            if isinstance(op, Conv) and op.groups > 1:
                self._grouped(b, layer, op)
                if layer.inputs[0] in fresh:
                    fresh.add(layer.name)
            elif isinstance(op, Conv | Linear):
                slices = self._channel_slices(b, layer) if layer.inputs[0] in fresh else None
                if slices is not None:
                    self._reduce(b, layer, slices)
                else:
                    self._split_outputs(b, layer, op.out_channels)
                    fresh.add(layer.name)
            elif b.follow_or_device_0(layer) and all(t in fresh for t in layer.inputs):
                fresh.add(layer.name)

    @staticmethod
    def _split_outputs(b: PlanBuilder, layer: Layer, out_channels: int) -> None:
        sizes = b.split_channels(layer, split_ranges(out_channels, b.speeds))
        b.note(layer, f"pair opens: output channels split {sizes}")

    @staticmethod
    def _grouped(b: PlanBuilder, layer: Layer, op: Conv) -> None:
        b.split_channels(layer, split_ranges(op.out_channels, b.speeds, unit=op.out_per_group))
        b.note(layer, "grouped: whole groups split, no reduction")

    @staticmethod
    def _channel_slices(b: PlanBuilder, layer: Layer) -> list[Range] | None:
        """Each device's input-channel slice, when the input is a clean channel split."""
        slices = b.channel_split_of(layer.inputs[0])
        if slices is None or sum(1 for r in slices if r[1] > r[0]) < 2:
            return None
        return slices

    @staticmethod
    def _reduce(b: PlanBuilder, layer: Layer, slices: list[Range]) -> None:
        contributors = [d for d, r in enumerate(slices) if r[1] > r[0]]
        for d in contributors:
            b.partial(d, layer, slices[d])
        how = b.reduce_partials(layer, contributors)
        b.note(layer, f"pair closes: input-channel partial sums {how}")
