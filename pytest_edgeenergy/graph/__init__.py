"""The model as a graph of layers: tracing, shapes, MACs, region arithmetic."""

from .box import Box, split_ranges, split_sizes
from .build import build_graph
from .layergraph import Layer, LayerGraph
from .ops import Activation, Op, WeightSlice

__all__ = ["Activation", "Box", "Layer", "LayerGraph", "Op", "WeightSlice", "build_graph",
           "split_ranges", "split_sizes"]
