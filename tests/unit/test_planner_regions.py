"""The planner's fast region arithmetic gives exactly what the plain loops it replaced gave.

The plain loops are written out here as the oracle: subtracting boxes one after another from
every part, and choosing senders by rescanning every source for every message. Plans depend on
the exact parts and their order (they become transfers), so equality is of lists, not of sets.
"""

from __future__ import annotations

import itertools

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pytest_edgeenergy import partition
from pytest_edgeenergy.graph.box import Box, BoxIndex, subtract_all
from pytest_edgeenergy.graph.layergraph import LayerGraph
from pytest_edgeenergy.plan import Transfer
from pytest_edgeenergy.planner import PlanBuilder
from pytest_edgeenergy.senders import Sources, choose_senders
from pytest_edgeenergy.strategies import BuilderStrategy

SHAPE = (12, 6, 5)
#: more examples than the default profile: the cases that tell orders apart are not the first
#: ones hypothesis draws, and each example takes microseconds
THOROUGH = settings(max_examples=200)


@st.composite
def boxes(draw: st.DrawFn) -> Box:
    """A box inside SHAPE, possibly empty."""
    ranges = []
    for size in SHAPE:
        a = draw(st.integers(0, size))
        b = draw(st.integers(a, size))
        ranges.append((a, b))
    return Box(tuple(ranges))


@st.composite
def channel_slices(draw: st.DrawFn) -> list[Box]:
    """Consecutive channel slices of SHAPE, whole in the other dimensions, in a drawn order:
    what a gather or all-gather fetches from."""
    cuts = sorted(set(draw(st.lists(st.integers(1, SHAPE[0] - 1), max_size=10))))
    bounds = [0, *cuts, SHAPE[0]]
    full = Box.full(SHAPE)
    slices = [full.with_range(0, (a, b)) for a, b in itertools.pairwise(bounds)]
    return draw(st.permutations(slices))


def plain_subtract_all(box: Box, others: list[Box]) -> list[Box]:
    parts = [] if box.empty else [box]
    for other in others:
        parts = [p for part in parts for p in part.subtract(other)]
    return parts


def plain_choose_senders(missing: list[Box], sources: list[Box],
                         devices: list[int]) -> tuple[list[tuple[int, Box]], list[Box]]:
    sends: list[tuple[int, Box]] = []
    while missing:
        best = max(range(len(sources)), default=None,
                   key=lambda s: (sum(m.intersect(sources[s]).numel for m in missing),
                                  -devices[s]))
        if best is None or all(m.intersect(sources[best]).empty for m in missing):
            return sends, missing
        rest: list[Box] = []
        for m in missing:
            part = m.intersect(sources[best])
            if part.empty:
                rest.append(m)
                continue
            sends.append((best, part))
            rest.extend(m.subtract(sources[best]))
        missing = rest
    return sends, []


@THOROUGH
@given(boxes(), st.lists(boxes(), max_size=14))
def test_subtracting_many_boxes_gives_the_parts_of_subtracting_them_one_by_one(
        box: Box, others: list[Box]) -> None:
    assert subtract_all(box, others) == plain_subtract_all(box, others)


@THOROUGH
@given(boxes(), channel_slices())
def test_subtracting_a_channel_split_gives_the_parts_of_subtracting_it_slice_by_slice(
        box: Box, slices: list[Box]) -> None:
    assert subtract_all(box, slices) == plain_subtract_all(box, slices)


@THOROUGH
@given(st.lists(boxes(), max_size=14), boxes())
def test_an_index_finds_exactly_the_boxes_that_overlap_a_query(
        indexed: list[Box], query: Box) -> None:
    expected = [i for i, b in enumerate(indexed) if not b.intersect(query).empty]
    assert BoxIndex(indexed).overlapping(query) == expected


@THOROUGH
@given(boxes(), st.lists(st.tuples(boxes(), st.integers(0, 3)), max_size=14),
       st.lists(boxes(), max_size=3))
def test_senders_are_those_of_rescanning_every_source_for_every_message(
        wanted: Box, placed: list[tuple[Box, int]], held: list[Box]) -> None:
    missing = plain_subtract_all(wanted, held)  # disjoint, as the planner's are
    sources = [b for b, _ in placed]
    devices = [d for _, d in placed]
    got = choose_senders(missing, Sources(sources, devices))
    assert got == plain_choose_senders(missing, sources, devices)


@THOROUGH
@given(channel_slices(), st.integers(0, SHAPE[0] - 1), st.integers(1, SHAPE[1]))
def test_an_all_gather_is_sent_as_before_when_a_band_of_rows_is_already_held(
        slices: list[Box], mine: int, rows: int) -> None:
    full = Box.full(SHAPE)
    own = next(s for s in slices if s.ranges[0][0] <= mine < s.ranges[0][1])
    held = [own, *(s.with_range(1, (0, rows)) for s in slices if s != own)]
    missing = plain_subtract_all(full, held)
    devices = list(range(len(slices)))
    got = choose_senders(missing, Sources(slices, devices))
    assert got == plain_choose_senders(missing, slices, devices)
    assert got[1] == []


class OverlappingHalves(BuilderStrategy):
    """Device 0 computes the first conv whole; device 1 computes channels 0:2 and 1:3 of it
    (overlapping pieces that hold as many elements as the whole, yet lack channel 3), then the
    second conv, for which it needs all four channels."""

    name = "overlapping-halves"

    def assign(self, b: PlanBuilder, graph: LayerGraph) -> None:
        first, second = graph.layers
        full = Box.full(first.out_shape)
        b.compute(0, first)
        b.compute(1, first, full.with_range(0, (0, 2)))
        b.compute(1, first, full.with_range(0, (1, 3)))
        b.compute(1, second)


def test_a_device_holding_overlapping_pieces_still_receives_what_they_do_not_cover() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 3, 1)).eval()
    pm = partition(model, OverlappingHalves(), 2, (1, 2, 5, 5))
    first = pm.graph.layers[0].name
    received = [s.box for s in pm.plan.steps if isinstance(s, Transfer) and s.dst == 1
                and pm.plan.pieces[s.piece].tensor == first]
    assert received == [Box(((3, 4), (0, 5), (0, 5)))]
    x = torch.randn(1, 2, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(pm(x), model(x))
