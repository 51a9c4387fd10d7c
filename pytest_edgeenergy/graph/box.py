"""Boxes: rectangular regions of a tensor, excluding the batch dimension.

A 4-D activation ``(N, C, H, W)`` has boxes over ``(C, H, W)``; a 2-D one ``(N, F)`` over
``(F,)``. The batch dimension is never split, so it is never part of a box. Bounds are
half-open ``[start, stop)``; an *ideal* box may reach outside the tensor (negative rows for
padding), a *clipped* box never does.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Range = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Box:
    """A half-open range per non-batch dimension."""

    ranges: tuple[Range, ...]

    @staticmethod
    def full(shape: Sequence[int]) -> Box:
        """The whole tensor of non-batch ``shape``."""
        return Box(tuple((0, int(s)) for s in shape))

    @property
    def shape(self) -> tuple[int, ...]:
        """Extent of each dimension (never negative)."""
        return tuple(max(0, b - a) for a, b in self.ranges)

    @property
    def numel(self) -> int:
        """Number of elements per batch item."""
        n = 1
        for a, b in self.ranges:  # a loop, not a product of shape: planning calls this a lot
            if b <= a:
                return 0
            n *= b - a
        return n

    @property
    def empty(self) -> bool:
        """True when the box holds no element."""
        return any(b <= a for a, b in self.ranges)

    def with_range(self, dim: int, rng: Range) -> Box:
        """A copy with dimension ``dim`` replaced by ``rng``."""
        r = list(self.ranges)
        r[dim] = rng
        return Box(tuple(r))

    def intersect(self, other: Box) -> Box:
        """The common part (possibly empty)."""
        pairs = zip(self.ranges, other.ranges, strict=True)
        return Box(tuple((max(a, c), min(b, d)) for (a, b), (c, d) in pairs))

    def overlap(self, other: Box) -> int:
        """Number of elements (per batch item) the two boxes have in common."""
        n = 1
        for (a, b), (c, d) in zip(self.ranges, other.ranges, strict=True):
            lo = a if a > c else c
            hi = b if b < d else d
            if hi <= lo:
                return 0
            n *= hi - lo
        return n

    def clip(self, shape: Sequence[int]) -> Box:
        """The part inside a tensor of non-batch ``shape``.

        Each range stays within this box's own range even when nothing is inside (then it is
        empty, at the border nearest the tensor), so the padding that grows the clipped region
        back to this one is never negative.
        """
        inside = True
        for (a, b), s in zip(self.ranges, shape, strict=True):
            if a < 0 or b > s:
                inside = False
                break
        if inside:  # the common case, and boxes are immutable
            return self
        out = []
        for (a, b), s in zip(self.ranges, shape, strict=True):
            lo = min(max(a, 0), b)
            out.append((lo, max(min(b, int(s)), lo)))
        return Box(tuple(out))

    def contains(self, other: Box) -> bool:
        """True when ``other`` lies inside this box (an empty box lies anywhere)."""
        if other.empty:
            return True
        pairs = zip(self.ranges, other.ranges, strict=True)
        return all(a <= c and d <= b for (a, b), (c, d) in pairs)

    def union_bounds(self, other: Box) -> Box:
        """The smallest box holding both (an empty operand is ignored)."""
        if self.empty:
            return other
        if other.empty:
            return self
        pairs = zip(self.ranges, other.ranges, strict=True)
        return Box(tuple((min(a, c), max(b, d)) for (a, b), (c, d) in pairs))

    def relative_to(self, origin: Box) -> tuple[slice, ...]:
        """Slices (batch dimension first) that cut this box out of a tensor holding ``origin``."""
        pairs = zip(self.ranges, origin.ranges, strict=True)
        return (slice(None), *(slice(a - o, b - o) for (a, b), (o, _) in pairs))

    def subtract(self, other: Box) -> list[Box]:
        """This box minus ``other``, as disjoint boxes."""
        if not self.overlap(other):
            return [] if self.empty else [self]
        out: list[Box] = []
        rest = list(self.ranges)
        for dim, ((a, b), (c, d)) in enumerate(zip(self.ranges, other.ranges, strict=True)):
            lo, hi = (a if a > c else c), (b if b < d else d)
            if a < lo:
                rest[dim] = (a, lo)
                out.append(Box(tuple(rest)))
            if hi < b:
                rest[dim] = (hi, b)
                out.append(Box(tuple(rest)))
            rest[dim] = (lo, hi)
        return out

    def to_list(self) -> list[list[int]]:
        """JSON form."""
        return [[a, b] for a, b in self.ranges]

    @staticmethod
    def from_list(data: Iterable[Sequence[int]]) -> Box:
        """Inverse of :meth:`to_list`."""
        return Box(tuple((int(r[0]), int(r[1])) for r in data))

    def __str__(self) -> str:
        return "[" + ", ".join(f"{a}:{b}" for a, b in self.ranges) + "]"


class BoxIndex:
    """The boxes of a list that overlap a query box, without testing every one.

    Boxes are sorted by where they start along the dimension that tells them apart best (the
    channels of a channel split, the rows of a band split); a query bisects on its end there
    and walks back while a box could still reach it. A few boxes are simply tested one by one.
    """

    #: Up to this many boxes, a query tests each one: faster than sorting them.
    SCAN_UP_TO = 8

    def __init__(self, boxes: Sequence[Box]) -> None:
        self.boxes = list(boxes)
        ndim = (min((len(b.ranges) for b in self.boxes), default=0)
                if len(self.boxes) > self.SCAN_UP_TO else 0)
        self.dim = max(range(ndim), default=0,
                       key=lambda d: len({b.ranges[d][0] for b in self.boxes}))
        self._order = (sorted(range(len(self.boxes)), key=lambda i: self.boxes[i].ranges[self.dim])
                       if ndim else [])
        self._starts = [self.boxes[i].ranges[self.dim][0] for i in self._order]
        self._reach: list[int] = []  # the furthest end among the boxes sorted so far
        for i in self._order:
            end = self.boxes[i].ranges[self.dim][1]
            self._reach.append(max(end, self._reach[-1]) if self._reach else end)

    def overlapping(self, box: Box) -> list[int]:
        """Indices (ascending) of the boxes that share at least one element with ``box``."""
        if not self._order or not box.ranges:
            return [i for i, b in enumerate(self.boxes) if b.overlap(box)]
        a, b = box.ranges[self.dim]
        hits = []
        for j in range(bisect_left(self._starts, b) - 1, -1, -1):
            if self._reach[j] <= a:
                break
            i = self._order[j]
            if self.boxes[i].overlap(box):
                hits.append(i)
        hits.sort()
        return hits


def subtract_all(box: Box, others: Iterable[Box]) -> list[Box]:
    """``box`` minus every box of ``others``, as disjoint boxes.

    The parts are those (and in the order) of subtracting ``others`` one after another from
    every part so far. Each part is only split by the boxes that overlap it, found by trying
    the next few in order (the usual case: pieces of a split handed in order) and otherwise
    through an index.
    """
    if box.empty:
        return []
    index = BoxIndex(list(others))
    hits = index.overlapping(box)
    parts: list[Box] = []
    stack = [(box, 0)]  # a part, and the position in ``hits`` of the next box to subtract
    while stack:
        part, pos = stack.pop()
        at = _next_overlap(part, hits, pos, index)
        if at is None:
            parts.append(part)
            continue
        pieces = part.subtract(index.boxes[hits[at]])
        stack.extend((q, at + 1) for q in reversed(pieces))
    return parts


_TRY_IN_ORDER = 4


def _next_overlap(part: Box, hits: list[int], pos: int, index: BoxIndex) -> int | None:
    """The first position from ``pos`` on in ``hits`` (ascending indices into ``index``) whose
    box overlaps ``part``, or None."""
    stop = min(pos + _TRY_IN_ORDER, len(hits))
    for at in range(pos, stop):
        if index.boxes[hits[at]].overlap(part):
            return at
    if stop == len(hits):
        return None
    later = [i for i in index.overlapping(part) if i >= hits[stop]]
    return bisect_left(hits, later[0]) if later else None


def split_sizes(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` items in proportion to ``weights`` (largest remainder, ties go to the
    lower index).

    Sizes sum to ``total``; a device whose share rounds to nothing gets 0 and stays idle.
    """
    if total < 0:
        raise ValueError(f"cannot split a negative count {total}")
    wsum = float(sum(weights))
    exact = [total * w / wsum for w in weights]
    sizes = [int(x) for x in exact]
    leftover = total - sum(sizes)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - sizes[i]), i))
    for i in order[:leftover]:
        sizes[i] += 1
    return sizes


def split_ranges(total: int, weights: Sequence[float], unit: int = 1) -> list[Range]:
    """Contiguous ranges over ``[0, total)`` sized by :func:`split_sizes`, in multiples of
    ``unit``."""
    if total % unit:
        raise ValueError(f"{total} is not a multiple of the split unit {unit}")
    sizes = split_sizes(total // unit, weights)
    out: list[Range] = []
    start = 0
    for s in sizes:
        out.append((start, start + s * unit))
        start += s * unit
    return out
