"""Which device sends which part of a region another device lacks.

The rule (the planner's, for every strategy): while something is missing, the source piece that
covers most of it sends every missing part it holds, one message per part, in the order the
parts are missing (a part split by a message is replaced, in place, by what remains of it);
ties go to the lowest device, then to the piece placed first.

:func:`choose_senders` applies that rule without rescanning every source and every missing part
for every message, which made planning grow as the cube of the device count: sources are found
through an index, a source's cover is updated only by the messages that overlap it, and the
parts a source can send are looked up among the descendants of the missing regions it overlaps.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from .graph.box import Box, BoxIndex

Key = tuple[int, ...]


class Sources:
    """The pieces that hold data of one tensor (boxes, on devices), indexed once for the many
    devices that fetch from them."""

    def __init__(self, boxes: Sequence[Box], devices: Sequence[int]) -> None:
        self.boxes = list(boxes)
        self.devices = list(devices)
        self.index = BoxIndex(self.boxes)
        #: for each source, the sources that overlap it (itself included): the only covers a
        #: message from it can change
        self.neighbours = [self.index.overlapping(b) for b in self.boxes]


def choose_senders(missing: Sequence[Box],
                   sources: Sources) -> tuple[list[tuple[int, Box]], list[Box]]:
    """The messages that bring ``missing`` (disjoint boxes) from ``sources``: ``(source index,
    part)`` in sending order, and the parts no source holds (empty when all can be sent)."""
    boxes = sources.boxes
    # What is still missing, grouped by the region of ``missing`` it descends from. Sorting the
    # keys gives the order of the missing list: a part split into several pieces is replaced by
    # its key extended with their rank, a part that merely shrinks keeps its key.
    live: list[dict[Key, Box]] = [{(k,): m} for k, m in enumerate(missing)]
    regions_of: dict[int, list[int]] = {}  # source -> regions of ``missing`` it overlaps
    cover: dict[int, int] = {}  # source -> elements still missing that it holds
    for k, m in enumerate(missing):
        for s in sources.index.overlapping(m):
            regions_of.setdefault(s, []).append(k)
            cover[s] = cover.get(s, 0) + m.overlap(boxes[s])
    # Covers only shrink, so stale heap entries are upper bounds: an entry whose cover is still
    # current when it comes to the top is the true best.
    heap = [(-c, sources.devices[s], s) for s, c in cover.items()]
    heapq.heapify(heap)
    sends: list[tuple[int, Box]] = []
    while heap:
        stale, dev, best = heap[0]
        if cover[best] != -stale:
            if cover[best]:
                heapq.heapreplace(heap, (-cover[best], dev, best))
            else:
                heapq.heappop(heap)
            continue
        heapq.heappop(heap)
        src = boxes[best]
        parts = sorted((key, r) for r in regions_of[best] for key, m in live[r].items()
                       if m.overlap(src))
        for key, r in parts:
            m = live[r].pop(key)
            sent = m.intersect(src)
            sends.append((best, sent))
            for s in sources.neighbours[best]:
                if s in cover:
                    cover[s] -= sent.overlap(boxes[s])
            pieces = m.subtract(src)
            if len(pieces) == 1:
                live[r][key] = pieces[0]
            else:
                for rank, piece in enumerate(pieces):
                    live[r][(*key, rank)] = piece
    lacking = sorted((key, m) for group in live for key, m in group.items())
    return sends, [m for _, m in lacking]
