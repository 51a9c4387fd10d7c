"""Where the network may be cut into segments, and which runs of layers a segment may span.

A cut between two layers is allowed where exactly one tensor is live across it (the output of
the layer before, read by later layers only through it). Inside a residual block the block's
input is live beside the branch, and inside a concatenation block every concatenated input is,
so such blocks are never cut: each stays whole inside one segment. A segment spans the layers
between two allowed cuts; it reads one tensor from before it and hands one on.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...graph.layergraph import LayerGraph
from .layouts import windows

__all__ = ["Span", "cut_points", "spans"]


@dataclass(frozen=True, slots=True)
class Span:
    """Layers ``start`` to ``stop - 1``; reads ``entry``, hands on ``exit``."""

    start: int
    stop: int
    entry: str
    exit: str


def live_tensors(graph: LayerGraph) -> list[set[str]]:
    """``live[i]``: the tensors made before layer ``i`` and read at or after it (the graph's
    output counts as read after the last layer)."""
    n = len(graph.layers)
    made = {graph.input_name: -1}
    made.update({layer.name: i for i, layer in enumerate(graph.layers)})
    last = dict.fromkeys(made, -1)
    for i, layer in enumerate(graph.layers):
        for t in layer.inputs:
            last[t] = max(last[t], i)
    last[graph.output] = n
    live: list[set[str]] = [set() for _ in range(n + 1)]
    for t, i in made.items():
        for cut in range(i + 1, last[t] + 1):
            live[cut].add(t)
    return live


def cut_points(graph: LayerGraph) -> list[tuple[int, str]]:
    """The allowed cuts, in order, each with the one tensor live across it (the first cut is
    before layer 0, reading the input; the last after the last layer, the output)."""
    return [(i, next(iter(ts))) for i, ts in enumerate(live_tensors(graph)) if len(ts) == 1]


def spans(graph: LayerGraph, max_windows: int) -> list[Span]:
    """Every run of layers between two allowed cuts holding at most ``max_windows`` window
    layers; a run between neighbouring cuts is always included, however many it holds."""
    cuts = cut_points(graph)
    out: list[Span] = []
    for k, (start, entry) in enumerate(cuts):
        for m in range(k + 1, len(cuts)):
            stop, exit_ = cuts[m]
            if m > k + 1 and windows(graph.layers[start:stop]) > max_windows:
                break
            out.append(Span(start, stop, entry, exit_))
    return out
