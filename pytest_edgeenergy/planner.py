"""The one mechanism every strategy shares: placing tasks and deriving the transfers they need.

A strategy only says *which device computes which region of which layer* (and, for input-channel
splits, which partial sums are reduced where). :class:`PlanBuilder` does the rest, identically
for all strategies: before a task runs it makes sure the device holds every input region the
task needs, by sending the missing parts from the devices that computed them (this is where
halos, all-gathers, scatters and reduce-scatters come from); at the end it gathers the output
on device 0 and marks the last use of every piece.

One refinement applies to every strategy alike: a region of a layer whose op is flagged
``recomputable`` (no MACs: a concatenation, a pool, a BatchNorm that could not be folded, ...)
that a device lacks is recomputed by that device from the layer's inputs when getting those
inputs costs fewer bytes than getting the region itself. Recomputation never adds MACs.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

from .errors import PartitionError
from .graph.box import Box, BoxIndex, split_ranges, subtract_all
from .graph.layergraph import Layer, LayerGraph
from .graph.ops import FP32_BYTES, Op, Reduce, WeightSlice
from .plan import Piece, Plan, Step, Task, Transfer
from .senders import Sources, choose_senders

#: How many recomputable layers deep a device looks for inputs it can recompute from.
MAX_RECOMPUTE_DEPTH = 4


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while planning.

    A plan is a great many small acyclic objects (boxes, pieces, steps) that reference counting
    frees; while they accumulate, the collector would otherwise rescan every live object of the
    process (the models' modules and tensors too) again and again: about half of planning time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def partial_name(layer: str, device: int) -> str:
    """Name of the partial-sum tensor ``device`` computes for ``layer``."""
    return f"{layer}~p{device}"


class PlanBuilder:
    """Accumulates tasks and the transfers they imply, then freezes them into a :class:`Plan`."""

    def __init__(self, graph: LayerGraph, speeds: Sequence[float], strategy: str,
                 params: dict[str, Any]) -> None:
        self.graph = graph
        self.n = len(speeds)
        self.speeds = tuple(float(s) for s in speeds)
        self.strategy = strategy
        self.params = dict(params)
        self.batch = graph.batch
        self.shapes: dict[str, tuple[int, ...]] = {graph.input_name: graph.shape(graph.input_name)}
        for layer in graph.layers:
            self.shapes[layer.name] = layer.out_shape
        self.pieces: list[Piece] = []
        self.steps: list[Step] = []
        self.held: dict[tuple[str, int], list[int]] = {}
        self.produced: dict[str, list[int]] = {}
        self.primary: dict[str, list[int]] = {}
        self.notes: dict[str, str] = {}
        self._overlapping: set[tuple[str, int]] = set()  # (tensor, device) with overlapping pieces
        self._indexes: dict[tuple[str, int], BoxIndex] = {}  # pieces held, see _held_index
        self._sources: dict[str, Sources] = {}  # pieces produced, indexed for ensure
        self._new_piece(0, graph.input_name, Box.full(self.shapes[graph.input_name]), -1,
                        produced=True)

    # ---- pieces and transfers -----------------------------------------------------------
    def nbytes(self, box: Box) -> int:
        """Bytes of a region, batch included."""
        return box.numel * self.batch * FP32_BYTES

    def _new_piece(self, device: int, tensor: str, box: Box, step: int, *, produced: bool,
                   primary: bool = False) -> int:
        pid = len(self.pieces)
        held = self.held.setdefault((tensor, device), [])
        # Copies and recomputations only ever fill what a device lacks; a strategy may place
        # overlapping pieces on one device, and then :meth:`_missing` cannot count volumes.
        if primary and any(self.pieces[p].box.overlap(box) for p in held):
            self._overlapping.add((tensor, device))
        self.pieces.append(Piece(pid, device, tensor, box, self.nbytes(box), step))
        held.append(pid)
        if produced:
            self.produced.setdefault(tensor, []).append(pid)
        if primary:
            self.primary.setdefault(tensor, []).append(pid)
        return pid

    def produced_pieces(self, tensor: str) -> list[Piece]:
        """The pieces of ``tensor`` the strategy placed (not copies, not recomputations)."""
        return [self.pieces[i] for i in self.primary.get(tensor, [])]

    def _missing(self, device: int, tensor: str, box: Box) -> tuple[list[int], list[Box]]:
        """The pieces ``device`` holds that overlap ``box``, and the parts of ``box`` it lacks."""
        held = self.held.get((tensor, device), [])
        if len(held) > BoxIndex.SCAN_UP_TO:
            near = [held[i] for i in self._held_index(tensor, device).overlapping(box)]
        else:
            near = held
        mine: list[int] = []
        volume = 0
        for p in near:
            if common := self.pieces[p].box.overlap(box):
                mine.append(p)
                volume += common
        if volume == box.numel and (tensor, device) not in self._overlapping:
            return mine, []  # disjoint pieces that hold as many elements as the box cover it
        return mine, subtract_all(box, [self.pieces[p].box for p in mine])

    def _held_index(self, tensor: str, device: int) -> BoxIndex:
        """An index of the pieces of ``tensor`` that ``device`` holds, rebuilt when it got more."""
        held = self.held[(tensor, device)]
        cached = self._indexes.get((tensor, device))
        if cached is None or len(cached.boxes) != len(held):
            cached = BoxIndex([self.pieces[p].box for p in held])
            self._indexes[(tensor, device)] = cached
        return cached

    def _fetch_bytes(self, device: int, tensor: str, box: Box, depth: int) -> int:
        """Bytes ``device`` must receive to hold ``box``, recomputing cheap layers where that is
        cheaper (see :meth:`_recompute_bytes`)."""
        _, missing = self._missing(device, tensor, box.clip(self.shapes[tensor]))
        direct = sum(self.nbytes(m) for m in missing)
        if direct == 0:
            return 0
        again = self._recompute_bytes(device, tensor, missing, depth)
        return direct if again is None else min(direct, again)

    def _recompute_bytes(self, device: int, tensor: str, missing: list[Box],
                         depth: int) -> int | None:
        """Bytes ``device`` must receive to compute ``missing`` of ``tensor`` itself, or None when
        ``tensor`` comes from a layer with MACs (or the input, or a partial sum)."""
        layer = self.graph.by_name.get(tensor)
        if layer is None or not layer.op.recomputable or depth >= MAX_RECOMPUTE_DEPTH:
            return None
        total = 0
        for m in missing:
            weight = WeightSlice(m.ranges[0]) if layer.op.has_weights else None
            for t, ideal in zip(layer.inputs, layer.op.input_boxes(m, weight), strict=True):
                if ideal is not None:
                    total += self._fetch_bytes(device, t, ideal, depth + 1)
        return total

    def ensure(self, device: int, tensor: str, box: Box) -> list[int]:
        """Make ``device`` hold ``box`` of ``tensor``; return its pieces that overlap ``box``.

        Missing parts come from the devices that computed them, one message per source region,
        preferring the source that covers most of what is missing.
        """
        box = box.clip(self.shapes[tensor])
        if box.empty:
            return []
        mine, missing = self._missing(device, tensor, box)
        layer = self.graph.by_name.get(tensor)
        if layer is not None and missing:
            kept: list[Box] = []
            for m in missing:
                again = self._recompute_bytes(device, tensor, [m], 0)
                if again is not None and again < self.nbytes(m):
                    mine.append(self.compute(device, layer, m, primary=False))
                else:
                    kept.append(m)
            missing = kept
        if not missing:
            return mine
        sources = [self.pieces[i] for i in self.produced.get(tensor, [])]
        indexed = self._sources.get(tensor)
        if indexed is None or len(indexed.boxes) != len(sources):
            indexed = Sources([s.box for s in sources], [s.device for s in sources])
            self._sources[tensor] = indexed
        sends, lacking = choose_senders(missing, indexed)
        if lacking:
            raise PartitionError(
                f"internal planning error ({self.strategy}): region {box} of '{tensor}' "
                f"needed on device {device} is not computed anywhere")
        for k, part in sends:
            mine.append(self._transfer(sources[k], device, part))
        return mine

    def _transfer(self, src: Piece, dst: int, box: Box) -> int:
        step = len(self.steps)
        pid = self._new_piece(dst, src.tensor, box, step, produced=False)
        self.steps.append(Transfer(step, src.device, dst, src.id, pid, box, self.nbytes(box)))
        return pid

    # ---- tasks --------------------------------------------------------------------------
    def _task(self, device: int, layer: Layer, kind: str, op: Op, inputs: Sequence[str],
              out_tensor: str, out_box: Box, weight: WeightSlice | None,
              primary: bool = True) -> int:
        if not 0 <= device < self.n:
            raise PartitionError(f"strategy '{self.strategy}' placed layer '{layer.name}' on "
                                 f"device {device}, but the cluster has {self.n} devices")
        in_boxes = op.input_boxes(out_box, weight)
        reads: list[tuple[int, ...]] = []
        read_bytes = 0
        for tensor, ideal in zip(inputs, in_boxes, strict=True):
            if ideal is None:
                reads.append(())
                continue
            reads.append(tuple(self.ensure(device, tensor, ideal)))
            read_bytes += self.nbytes(ideal.clip(self.shapes[tensor]))
        step = len(self.steps)
        pid = self._new_piece(device, out_tensor, out_box, step, produced=True, primary=primary)
        self.steps.append(Task(
            step=step, device=device, layer=layer.name, kind=kind, out=pid, inputs=tuple(inputs),
            in_boxes=tuple(in_boxes), reads=tuple(reads), weight=weight,
            macs=op.macs(out_box, weight) * self.batch, read_bytes=read_bytes,
            write_bytes=self.nbytes(out_box), weight_bytes=op.weight_bytes(weight)))
        return pid

    def compute(self, device: int, layer: Layer, out_box: Box | None = None, *,
                primary: bool = True) -> int:
        """``device`` computes ``out_box`` (default: all) of ``layer``, activations included.

        ``primary=False`` marks a recomputation made to avoid a transfer: it can feed other
        devices but is not part of the layer's split (which :meth:`follow` reads).
        """
        box = Box.full(layer.out_shape) if out_box is None else out_box
        weight = WeightSlice(box.ranges[0]) if layer.op.has_weights else None
        return self._task(device, layer, "compute", layer.op, layer.inputs, layer.name, box, weight,
                          primary)

    def partial(self, device: int, layer: Layer, inp: tuple[int, int]) -> int:
        """``device`` computes the partial sum of ``layer`` over input channels ``inp``."""
        tensor = partial_name(layer.name, device)
        self.shapes[tensor] = layer.out_shape
        full = Box.full(layer.out_shape)
        weight = WeightSlice(full.ranges[0], inp=inp, weights=True, bias=False)
        return self._task(device, layer, "partial", layer.op, layer.inputs, tensor, full, weight)

    def reduce(self, device: int, layer: Layer, out_box: Box, contributors: Sequence[int]) -> int:
        """``device`` sums the partial sums of ``contributors`` over ``out_box``, then bias and
        activations."""
        inputs = [partial_name(layer.name, d) for d in contributors]
        weight = WeightSlice(out_box.ranges[0], weights=False, bias=True)
        op = Reduce(layer.op, len(inputs))
        return self._task(device, layer, "reduce", op, inputs, layer.name, out_box, weight)

    def reduce_partials(self, layer: Layer, contributors: Sequence[int]) -> str:
        """Finish ``layer`` from the partial sums of ``contributors`` (see :meth:`partial`).

        The model's output layer is reduced whole on device 0, which must end with it; any other
        layer is reduce-scattered by output channel in proportion to device speed (device d sums
        its channel slice, then adds bias and activations), so that the next layer finds its
        input split by channel. Returns how, for the plan's notes: ``"reduced on device 0"`` or
        e.g. ``"reduce-scattered 16/16/16/16"``.
        """
        full = Box.full(layer.out_shape)
        if layer.name == self.graph.output:
            self.reduce(0, layer, full, contributors)
            return "reduced on device 0"
        ranges = split_ranges(layer.out_shape[0], self.speeds)
        for d, r in enumerate(ranges):
            if r[1] > r[0]:
                self.reduce(d, layer, full.with_range(0, r), contributors)
        return "reduce-scattered " + "/".join(str(r[1] - r[0]) for r in ranges)

    def channel_split_of(self, tensor: str) -> list[tuple[int, int]] | None:
        """Each device's channel range of ``tensor`` when the placed pieces split it cleanly
        by channel (at most one piece per device, each whole in the other dimensions, together
        tiling the channels), else None. Devices without a piece get an empty range."""
        full = Box.full(self.shapes[tensor])
        ranges: dict[int, tuple[int, int]] = {}
        for p in self.produced_pieces(tensor):
            if p.device in ranges or p.box.ranges[1:] != full.ranges[1:]:
                return None
            ranges[p.device] = p.box.ranges[0]
        ordered = sorted(ranges.values())
        if not ordered or ordered[0][0] != 0 or ordered[-1][1] != full.ranges[0][1]:
            return None
        if any(a[1] != c[0] for a, c in itertools.pairwise(ordered)):
            return None
        return [ranges.get(d, (0, 0)) for d in range(self.n)]

    def split_channels(self, layer: Layer, ranges: Sequence[tuple[int, int]]) -> str:
        """Device d computes output channels ``ranges[d]`` of ``layer`` (empty: nothing);
        returns the split sizes, e.g. ``"16/16/16/16"``, for the plan's notes."""
        full = Box.full(layer.out_shape)
        for d, r in enumerate(ranges):
            if r[1] > r[0]:
                self.compute(d, layer, full.with_range(0, r))
        return "/".join(str(r[1] - r[0]) for r in ranges)

    def follow(self, layer: Layer) -> bool:
        """Compute ``layer`` where its inputs' pieces already are (channel-wise ops).

        Each piece a task produced of an input yields the output region the op maps it to, on
        the same device. Returns False, planning nothing, when some piece cannot be mapped or
        the mapped regions do not tile the output exactly.
        """
        regions: list[tuple[int, Box]] = []
        for i, tensor in enumerate(layer.inputs):
            for p in self.produced_pieces(tensor):
                out = layer.op.follow(p.box, i)
                if out is None:
                    if layer.op.led_by_first_input and i > 0:
                        continue
                    return False
                if out.empty:  # the piece maps to nothing (a channel slice outside it)
                    continue
                regions.append((p.device, out))
        full = Box.full(layer.out_shape)
        if sum(b.numel for _, b in regions) != full.numel:
            return False
        for k, (_, a) in enumerate(regions):
            if not full.contains(a) or any(not a.intersect(b).empty for _, b in regions[k + 1:]):
                return False
        for device, box in regions:
            self.compute(device, layer, box)
        return True

    def follow_or_device_0(self, layer: Layer) -> bool:
        """:meth:`follow` ``layer``'s inputs, or, when it cannot, compute it whole on device 0;
        noted either way. Returns whether it followed (the channel strategies' fallback)."""
        if self.follow(layer):
            self.note(layer, "follows its input's channel slices")
            return True
        self.compute(0, layer)
        self.note(layer, "cannot follow its input's slices: whole on device 0")
        return False

    def place(self, device: int, tensor: str, box: Box) -> int:
        """Make ``device`` hold ``box`` of ``tensor`` before the first step, as it holds the
        input image (for pricing a fragment of a plan from a given data layout)."""
        self.shapes.setdefault(tensor, self.graph.shape(tensor))
        return self._new_piece(device, tensor, box, -1, produced=True, primary=True)

    def note(self, layer: Layer, text: str) -> None:
        """Record how ``layer`` is split, for the plan's summary."""
        self.notes[layer.name] = text

    # ---- finishing ----------------------------------------------------------------------
    def finish(self) -> Plan:
        """Gather the output on device 0, mark last uses, and return the frozen plan."""
        out = self.graph.output
        output_pieces = tuple(self.ensure(0, out, Box.full(self.shapes[out])))
        last: dict[int, int] = {}
        for s in self.steps:
            if isinstance(s, Task):
                for r in s.reads:
                    for pid in r:
                        last[pid] = s.step
                last.setdefault(s.out, s.step)
            else:
                last[s.src_piece] = s.step
                last.setdefault(s.piece, s.step)
        keep = set(output_pieces)
        frees: list[list[int]] = [[] for _ in self.steps]
        for pid, step in last.items():
            if pid not in keep and step >= 0:
                frees[step].append(pid)
        if 0 not in last and 0 not in keep and frees:  # input never read: free at once
            frees[0].append(0)
        return Plan(
            strategy=self.strategy, params=self.params, n_devices=self.n, speeds=self.speeds,
            input_name=self.graph.input_name, input_shape=tuple(self.graph.input_shape),
            output=out, shapes=dict(self.shapes),
            layer_kinds={layer.name: layer.describe() for layer in self.graph.layers},
            graph_macs=self.graph.total_macs(),
            graph_weight_bytes=self.graph.total_weight_bytes(),
            pieces=list(self.pieces), steps=list(self.steps),
            frees=[tuple(sorted(f)) for f in frees], output_pieces=output_pieces,
            notes=dict(self.notes))
