"""Spatial partitioning: every device computes a band of rows of each feature map.

Layers that map rows to rows (convolutions, pools, activations, residual adds, concatenations,
reorg, padding) are grouped into fused stacks of ``fuse`` convolution/pool layers (default 2).
The tensors a stack hands on are split into bands of rows in proportion to device speed; the
region each device needs of every tensor inside the stack is back-propagated through the stack
with each layer's exact kernel, stride, padding, dilation and ceil_mode, so a device computes
its band's halo itself (redundant MACs, reported by the plan) and needs data from other devices
only at the stack's input: a scatter of input bands with halos, or a halo exchange between
stacks. ``fuse=1`` exchanges halos before every layer and recomputes nothing; a larger ``fuse``
sends fewer, larger messages and recomputes more.

A global average pool (squeeze-and-excitation, classifier heads) needs every band: each device
pools its own band into a partial sum and the partials are added on device 0, which then holds
the pooled vector (an SE gate computed from it goes back to every band, as the bands of the
multiply need it). Other layers with no row structure (linear, flatten, other adaptive pooling)
run whole on device 0, and the plan says so.
"""

from __future__ import annotations

from ..errors import PartitionError
from ..graph.box import Box, split_ranges
from ..graph.layergraph import Layer, LayerGraph
from ..planner import PlanBuilder
from .protocol import BuilderStrategy

DEFAULT_FUSE = 2


class SpatialStrategy(BuilderStrategy):
    """Split feature maps into bands of rows, with halos back-propagated through fused stacks."""

    name = "spatial"

    def __init__(self, fuse: int = DEFAULT_FUSE) -> None:
        if isinstance(fuse, bool) or not isinstance(fuse, int) or fuse < 1:
            raise PartitionError(
                f"strategy 'spatial' parameter fuse must be a whole number >= 1, got {fuse!r}")
        super().__init__()
        self.params = {"fuse": fuse}
        self.fuse = fuse

    @staticmethod
    def _row_mappable(layer: Layer) -> bool:
        return layer.op.spatial and len(layer.out_shape) == 3

    def assign(self, b: PlanBuilder, graph: LayerGraph) -> None:
        layers = graph.layers
        i = 0
        while i < len(layers):
            if layers[i].op.sums_over_rows:
                self._partial_sums(b, layers[i])
                i += 1
                continue
            if not self._row_mappable(layers[i]):
                b.compute(0, layers[i])
                b.note(layers[i], "no row structure: not split under spatial, whole on device 0")
                i += 1
                continue
            stack: list[Layer] = []
            windows = 0
            while i < len(layers) and self._row_mappable(layers[i]):
                is_window = layers[i].op.sliding_window
                if is_window and windows == self.fuse:
                    break
                stack.append(layers[i])
                windows += is_window
                i += 1
            self._stack(b, graph, stack)

    def _partial_sums(self, b: PlanBuilder, layer: Layer) -> None:
        """A global average pool: each device pools its own band of rows (a partial sum), and
        the partials are added on device 0, so no band travels, only C numbers per device."""
        rows = split_ranges(b.shapes[layer.inputs[0]][1], b.speeds)
        contributors = [d for d, r in enumerate(rows) if r[1] > r[0]]
        if len(contributors) == 1:  # one band: nothing to add up
            b.compute(contributors[0], layer)
            b.note(layer, f"one band of rows: whole on device {contributors[0]}")
            return
        for d in contributors:
            b.partial(d, layer, rows[d])
        b.reduce(0, layer, Box.full(layer.out_shape), contributors)
        spans = " ".join(f"{r[0]}:{r[1]}" if r[1] > r[0] else "-" for r in rows)
        b.note(layer, f"partial sums over rows {spans}, added on device 0")

    def _stack(self, b: PlanBuilder, graph: LayerGraph, stack: list[Layer]) -> None:
        names = {layer.name for layer in stack}
        need: dict[tuple[str, int], Box] = {}
        exported: set[str] = set()
        for layer in stack:
            outside = any(c.name not in names for c, _ in graph.consumers(layer.name))
            if layer.name == graph.output or outside:
                exported.add(layer.name)
            # Every device computes at least its own band of every layer, so every row the
            # unpartitioned model computes is computed (even one no later layer reads), and
            # the only extra work is the halo.
            full = Box.full(layer.out_shape)
            for d, rows in enumerate(split_ranges(layer.out_shape[1], b.speeds)):
                if rows[1] > rows[0]:
                    need[(layer.name, d)] = full.with_range(1, rows)
        for layer in reversed(stack):
            for d in range(b.n):
                box = need.get((layer.name, d))
                if box is None or box.empty:
                    continue
                for tensor, ideal in zip(layer.inputs, layer.op.input_boxes(box, None),
                                         strict=True):
                    if ideal is None or tensor not in names:
                        continue
                    clipped = ideal.clip(b.shapes[tensor])
                    key = (tensor, d)
                    need[key] = clipped if key not in need else need[key].union_bounds(clipped)
        first, last = stack[0].name, stack[-1].name
        for layer in stack:
            spans = []
            for d in range(b.n):
                box = need.get((layer.name, d))
                if box is not None and not box.empty:
                    b.compute(d, layer, box)
                    spans.append(f"{box.ranges[1][0]}:{box.ranges[1][1]}")
                else:
                    spans.append("-")
            role = "bands" if layer.name in exported else "bands with halos"
            b.note(layer, f"rows {' '.join(spans)} ({role}; fused stack {first}..{last})")
