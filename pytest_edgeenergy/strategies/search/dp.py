"""Combine the segment and transition prices: a dynamic programme over the allowed cuts.

Cuts are visited in order. At each cut a beam keeps the most promising partial plans that end
there (each with the layout its last segment left the tensor in); every segment that starts at
the cut, in every layout, extends every kept partial by its transition and its own price. The
objectives are not additive (``max_device_j`` is a maximum over devices of sums, and the static
energy of every device grows with the makespan), so the state cannot be one number per cut: the
beam keeps, per cut, the best partial for each distinct output layout, then the best of those
by the objective evaluated on the partial sums, plus the fastest partial (a deadline may need
it). With one kept partial per output layout the programme is exact for an additive objective;
the beam bounds it otherwise. Memory is a hard constraint here too: a path whose weights plus
activation peak exceed a device's memory ranks after every path that fits. The best complete
paths are the finalists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .objective import Goal
from .pricing import Cost, Option, Pricer, Regions

__all__ = ["Partial", "Pricing", "best_paths"]


@dataclass(frozen=True, slots=True)
class Partial:
    """A path of priced segments from the input up to a cut, and where it left its tensor."""

    cost: Cost
    held: Regions
    options: tuple[Option, ...]


@dataclass(frozen=True, slots=True)
class Pricing:
    """What turns a priced path into the goal's key: each device's static power and memory."""

    goal: Goal
    static_w: tuple[float, ...]
    memory_bytes: tuple[int, ...]

    def device_j(self, cost: Cost) -> tuple[float, ...]:
        """Each device's dynamic joules plus its static power over the path's time."""
        return tuple(j + w * cost.time_s
                     for j, w in zip(cost.device_j, self.static_w, strict=True))

    def value(self, cost: Cost) -> float:
        """The objective of a priced path."""
        return self.goal.value(self.device_j(cost), cost.time_s)

    def key(self, cost: Cost) -> tuple[float, float, float]:
        """The goal's sort key of a priced path (memory fit first: a hard constraint)."""
        return self.goal.key(self.device_j(cost), cost.time_s, cost.fits(self.memory_bytes))


def _prune(partials: list[Partial], pricing: Pricing, beam: int) -> list[Partial]:
    ranked = sorted(partials, key=lambda p: pricing.key(p.cost))
    best_per_layout: dict[Regions, Partial] = {}
    for p in ranked:
        best_per_layout.setdefault(p.held, p)
    kept = list(best_per_layout.values())[:beam]
    fastest = min(ranked, key=lambda p: p.cost.time_s, default=None)
    if fastest is not None and fastest not in kept:
        kept.append(fastest)
    return kept


def best_paths(pricer: Pricer, options: Sequence[Option], cuts: Sequence[int],
               pricing: Pricing, beam: int, finalists: int
               ) -> tuple[list[tuple[Cost, tuple[Option, ...]]], int]:
    """The ``finalists`` best complete paths by estimated objective (gather to device 0
    included), and how many partial paths were priced."""
    starting: dict[int, list[Option]] = {}
    for opt in options:
        starting.setdefault(opt.span.start, []).append(opt)
    frontier = {cuts[0]: [Partial(Cost.zero(len(pricing.static_w)), pricer.origin(), ())]}
    priced = 0
    last = cuts[-1]
    done: list[Partial] = []
    for c in cuts:
        kept = _prune(frontier.pop(c, []), pricing, beam)
        if c == last:
            done = kept
            break
        for p in kept:
            for opt in starting.get(c, []):
                step = pricer.transition(opt.span.entry, p.held, opt.need)
                frontier.setdefault(opt.span.stop, []).append(
                    Partial(p.cost + step + opt.cost, opt.exit, (*p.options, opt)))
                priced += 1
    complete = [(p.cost + pricer.gather(p.held), p.options) for p in done]
    complete.sort(key=lambda c: pricing.key(c[0]))
    return complete[:finalists], priced

