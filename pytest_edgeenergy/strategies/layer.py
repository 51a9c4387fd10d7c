"""Layer-wise (pipeline) partitioning: each device runs a contiguous block of layers.

Blocks follow the topological order, device 0 first (it holds the image). Cuts are placed one
after another so that each device's share of the MACs still to place follows its relative speed
among the devices still to fill; among the cut positions within 5 % of the total MACs of the
ideal one, the one that sends the fewest bytes wins (a cut between
residual blocks sends one tensor, a cut inside one sends two). The activations live across a cut
are sent point to point; the last block's output is sent back to device 0. A device whose share
rounds to no layer stays idle.
"""

from __future__ import annotations

from ..graph.layergraph import LayerGraph
from ..planner import PlanBuilder
from .protocol import BuilderStrategy

CUT_WINDOW = 0.05


def crossing_bytes(graph: LayerGraph) -> list[int]:
    """``crossing[i]``: bytes of the tensors live across a cut before layer ``i``."""
    n = len(graph.layers)
    index = {graph.input_name: -1}
    index.update({layer.name: i for i, layer in enumerate(graph.layers)})
    last_use = {t: index[t] for t in index}
    for i, layer in enumerate(graph.layers):
        for t in layer.inputs:
            last_use[t] = max(last_use[t], i)
    last_use[graph.output] = n
    delta = [0] * (n + 2)
    for t, made in index.items():
        if last_use[t] > made:  # live over cuts made+1 .. last_use
            size = graph.tensor_bytes(t)
            delta[made + 1] += size
            delta[last_use[t] + 1] -= size
    out, acc = [], 0
    for i in range(n + 1):
        acc += delta[i]
        out.append(acc)
    return out


def block_cuts(graph: LayerGraph, speeds: tuple[float, ...]) -> list[int]:
    """Start index of each device's block (non-decreasing, first 0), one per device."""
    macs = [graph.layer_macs(layer) for layer in graph.layers]
    n = len(macs)
    cum = [0]
    for m in macs:
        cum.append(cum[-1] + m)
    total = cum[-1]
    crossing = crossing_bytes(graph)
    cuts = [0]
    for k in range(1, len(speeds)):
        lo = cuts[-1]
        # device k-1's share of what is left, so that a heavy layer early on does not leave
        # the next device with nothing to do
        target = cum[lo] + (total - cum[lo]) * speeds[k - 1] / sum(speeds[k - 1:])
        cand = range(lo, n + 1)
        near = [i for i in cand if abs(cum[i] - target) <= CUT_WINDOW * total]
        # ties go to the later cut: the earlier device (device 0 holds the image) keeps more
        if near:
            best = min(near, key=lambda i: (crossing[i], abs(cum[i] - target), -i))
        else:
            best = min(cand, key=lambda i: (abs(cum[i] - target), -i))
        cuts.append(best)
    return cuts


class LayerStrategy(BuilderStrategy):
    """Pipeline: contiguous blocks of layers, balanced by MACs weighted by device speed."""

    name = "layer"

    def assign(self, b: PlanBuilder, graph: LayerGraph) -> None:
        cuts = [*block_cuts(graph, b.speeds), len(graph.layers)]
        for d in range(b.n):
            block = graph.layers[cuts[d]:cuts[d + 1]]
            for layer in block:
                b.compute(d, layer)
                b.note(layer, f"block of device {d} (layers {cuts[d]}..{cuts[d + 1] - 1})")
