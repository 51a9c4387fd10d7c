"""The ``search`` strategy: a layout and split proportions per segment of the network, chosen
for the lowest energy (or makespan) on the run's cluster and energy model."""

from .strategy import SearchReport, SearchStrategy, SegmentChoice

__all__ = ["SearchReport", "SearchStrategy", "SegmentChoice"]
