"""Boxes: rectangular regions of a tensor, excluding the batch dimension.

A 4-D activation ``(N, C, H, W)`` has boxes over ``(C, H, W)``; a 2-D one ``(N, F)`` over
``(F,)``. The batch dimension is never split, so it is never part of a box. Bounds are
half-open ``[start, stop)``; an *ideal* box may reach outside the tensor (negative rows for
padding), a *clipped* box never does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from math import prod

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
        return prod(self.shape)

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

    def clip(self, shape: Sequence[int]) -> Box:
        """The part inside a tensor of non-batch ``shape``.

        Each range stays within this box's own range even when nothing is inside (then it is
        empty, at the border nearest the tensor), so the padding that grows the clipped region
        back to this one is never negative.
        """
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
        inter = self.intersect(other)
        if inter.empty:
            return [] if self.empty else [self]
        out: list[Box] = []
        rest = self
        for dim, ((a, b), (c, d)) in enumerate(zip(self.ranges, inter.ranges, strict=True)):
            if a < c:
                out.append(rest.with_range(dim, (a, c)))
            if d < b:
                out.append(rest.with_range(dim, (d, b)))
            rest = rest.with_range(dim, (c, d))
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


def subtract_all(box: Box, others: Iterable[Box]) -> list[Box]:
    """``box`` minus every box of ``others``, as disjoint boxes."""
    parts = [] if box.empty else [box]
    for other in others:
        parts = [p for part in parts for p in part.subtract(other)]
        if not parts:
            break
    return parts


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
