"""Partitioning strategies: one module per strategy, one protocol they share."""

from .input_channel import InputChannelStrategy
from .layer import LayerStrategy
from .output_channel import OutputChannelStrategy
from .protocol import BuilderStrategy, ClusterLike, Strategy
from .registry import (
    get_strategy,
    list_strategies,
    register_strategy,
    resolve_strategy,
    unregister_strategy,
)
from .spatial import SpatialStrategy

__all__ = [
    "BuilderStrategy", "ClusterLike", "InputChannelStrategy", "LayerStrategy",
    "OutputChannelStrategy", "SpatialStrategy", "Strategy", "get_strategy", "list_strategies",
    "register_strategy", "resolve_strategy", "unregister_strategy",
]
