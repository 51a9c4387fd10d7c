"""The local backend: every device of a plan executed in one process, on its own data only.

Each device keeps a store of the pieces it holds. A task assembles its inputs from *its own*
pieces (the plan says which), pads them with the layer's padding where the region reaches past
the tensor's border, and runs the layer's kernel with only its weight slice. A transfer gives
the receiver exactly the planned region of the sender's piece (a read-only view: pieces are
never written, see :meth:`Executor.move`). Pieces are dropped after their last use. Every count
in the :class:`Trace` is measured from these tensors (their element counts and the weights the
kernels really read), never copied from the plan, so comparing the two checks the plan.

One simulator-only duplicate is elided, in ``run_local`` alone: an input that several devices
assemble alike (the same regions of the same memory, such as each device's copy of the full
input of an all-gather) is assembled once per call and read by each of them (see
:meth:`Executor.run_task`). Each device still computes its own slice from what it received;
the trace counts pieces, which are unchanged. ``run_local`` also keeps freed memory mapped for
the process (:func:`keep_freed_memory`).

:class:`Executor` is that machinery for any set of devices: ``run_local`` drives one executor
for every device, its devices at the same time (:mod:`.threads`) or in turn; the ``gloo``
backend drives one per process, for its own device, and moves the bytes of its transfers over
the network.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from ..checks import check_tensor_input
from ..errors import PartitionError
from ..graph.box import Box, subtract_all
from ..graph.layergraph import Layer, LayerGraph
from ..graph.ops import Op, Pad2, Reduce, RunResult, pad_amounts
from ..plan import Piece, Plan, Task, Transfer
from ..trace import Trace

_T = TypeVar("_T")


class PlanExecutionError(PartitionError):
    """A plan that does not execute as planned (a bug in a strategy, never bad user input)."""


def check_input(plan: Plan, x: Tensor) -> None:
    """Raise :class:`PartitionError` unless ``x`` is a float32 CPU tensor of the planned
    shape."""
    check_tensor_input(x)
    expected = tuple(plan.input_shape)
    if tuple(x.shape) != expected:
        raise PartitionError(f"input of shape {tuple(x.shape)} does not match the planned input "
                             f"shape {expected}")


@dataclass(frozen=True, slots=True)
class _Gather:
    """How to get a region from a device's pieces: a view of one piece, or copies from several
    into a new tensor (``parts``: piece, slices in the new tensor, slices in the piece)."""

    shape: tuple[int, ...]  # without batch
    view: tuple[int, tuple[slice, ...]] | None
    parts: tuple[tuple[int, tuple[slice, ...], tuple[slice, ...]], ...] = ()
    cat_dim: int | None = None  # the parts, in order, tile the region along this dimension

    def run(self, store: dict[int, Tensor], batch: int) -> Tensor:
        """The region, read from ``store``."""
        if self.view is not None:
            pid, slices = self.view
            return store[pid] if not slices else store[pid][slices]
        if self.cat_dim is not None:
            return torch.cat([store[pid][src] for pid, _, src in self.parts], self.cat_dim)
        out = torch.empty((batch, *self.shape), dtype=torch.float32)
        for pid, dst, src in self.parts:
            out[dst] = store[pid][src]
        return out


def _gather(pieces: Sequence[Piece], pids: Sequence[int], box: Box, what: str) -> _Gather:
    """Prepare reading ``box`` from the listed pieces; an error if they do not cover it."""
    held = [pieces[p] for p in pids]
    if box.empty:  # the region lies wholly in the padding
        return _Gather(box.shape, None)
    for p in held:
        if p.box == box:  # the whole piece: no view to make
            return _Gather(box.shape, (p.id, ()))
        if p.box.contains(box):
            return _Gather(box.shape, (p.id, box.relative_to(p.box)))
    if subtract_all(box, [p.box for p in held]):
        raise PlanExecutionError(f"{what}: region {box} is not covered by the pieces read")
    parts = []
    boxes = []
    for p in held:
        part = p.box.intersect(box)
        if not part.empty:
            parts.append((p.id, part.relative_to(box), part.relative_to(p.box)))
            boxes.append(part)
    for dim in range(len(box.ranges)):
        order = sorted(range(len(boxes)), key=lambda i: boxes[i].ranges[dim])
        if _tiles(box, [boxes[i] for i in order], dim):  # one torch.cat, no empty + copies
            return _Gather(box.shape, None, tuple(parts[i] for i in order), dim + 1)
    return _Gather(box.shape, None, tuple(parts))


def _tiles(box: Box, parts: Sequence[Box], dim: int) -> bool:
    """True when ``parts``, in this order, tile ``box`` along dimension ``dim`` exactly."""
    if len(parts) < 2:
        return False
    others = box.ranges[:dim] + box.ranges[dim + 1:]
    edge = box.ranges[dim][0]
    for part in parts:
        lo, hi = part.ranges[dim]
        if lo != edge or part.ranges[:dim] + part.ranges[dim + 1:] != others:
            return False
        edge = hi
    return edge == box.ranges[dim][1]


@dataclass(frozen=True, slots=True)
class _Input:
    """One input of a task: where to read it, and the padding to add (None: none)."""

    gather: _Gather
    pad: list[int] | None
    fill: float


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What a task needs beyond the plan's data, worked out once per plan and step."""

    op: Op
    layer: Layer
    out_box: Box
    inputs: tuple[_Input | None, ...]
    native: Pad2
    regions: tuple[Box | None, ...]  # the region of each input read (before padding)


def _prepare(task: Task, plan: Plan, graph: LayerGraph) -> _Prepared:
    layer = graph.by_name.get(task.layer)
    if layer is None:
        raise PlanExecutionError(f"step {task.step} on device {task.device} names layer "
                                 f"'{task.layer}', which the model does not have")
    op: Op = Reduce(layer.op, len(task.inputs)) if task.kind == "reduce" else layer.op
    inputs: list[_Input | None] = []
    regions: list[Box | None] = []
    native: Pad2 = (0, 0)
    for i, (tensor, ideal, reads) in enumerate(zip(task.inputs, task.in_boxes, task.reads,
                                                    strict=True)):
        if ideal is None:
            inputs.append(None)
            regions.append(None)
            continue
        clipped = ideal.clip(plan.shapes[tensor])
        regions.append(clipped)
        what = f"step {task.step} ({task.layer} on device {task.device}) input '{tensor}'"
        for pid in reads:
            if plan.pieces[pid].device != task.device:
                raise PlanExecutionError(f"{what}: piece {pid} is on device "
                                         f"{plan.pieces[pid].device}")
        amounts, kept = pad_amounts(ideal, clipped, native=op.native_padding and i == 0)
        if i == 0:
            native = kept
        inputs.append(_Input(_gather(plan.pieces, reads, clipped, what), amounts, op.fill(i)))
    return _Prepared(op, layer, plan.pieces[task.out].box, tuple(inputs), native, tuple(regions))


@dataclass(frozen=True, slots=True)
class _Layout:
    """What the executor checks and counts per piece and step, worked out once per plan."""

    shapes: tuple[tuple[int, ...], ...]  # planned shape of each piece, batch included
    owners: tuple[int, ...]  # device of each piece
    inputs: tuple[int, ...]  # the input's pieces (made by step -1)

    @staticmethod
    def of(plan: Plan) -> _Layout:
        """The layout of ``plan``."""
        batch = plan.input_shape[0]
        return _Layout(tuple((batch, *p.box.shape) for p in plan.pieces),
                       tuple(p.device for p in plan.pieces),
                       tuple(p.id for p in plan.pieces if p.step == -1))


@dataclass(frozen=True, slots=True)
class _Send:
    """Where a transfer reads its region: the source piece and the slices (``()``: all of it)."""

    src: int
    slices: tuple[slice, ...]


@dataclass(frozen=True, slots=True)
class _SharedReads:
    """Task inputs that several tasks assemble from the same memory (see
    :meth:`Executor.run_task`): the group of each such (step, input), and how many reads each
    group has. Worked out once per plan."""

    groups: dict[tuple[int, int], int]
    reads: tuple[int, ...]

    @staticmethod
    def of(plan: Plan, prepare: Callable[[Task], _Prepared]) -> _SharedReads:
        """The shared reads of ``plan`` run by one executor that plays every device, where a
        piece received is a view of the sender's (:meth:`Executor.move`)."""
        sent_from = {t.piece: t.src_piece for t in plan.transfers}

        def root(pid: int) -> int:
            """The piece whose memory ``pid`` is a view of (itself unless it was received)."""
            while pid in sent_from:
                pid = sent_from[pid]
            return pid

        keyed: dict[tuple[object, ...], list[tuple[int, int]]] = {}
        for task in plan.tasks:
            prep = prepare(task)
            for i, inp in enumerate(prep.inputs):
                if inp is None or inp.gather.view is not None or not inp.gather.parts:
                    continue  # a view or nothing to read: nothing assembled
                box = prep.regions[i]
                parts = tuple((root(pid), tuple((d.start, d.stop) for d in dst))
                              for pid, dst, _ in inp.gather.parts)
                keyed.setdefault((task.inputs[i], box, inp.gather.cat_dim, parts),
                                 []).append((task.step, i))
        groups: dict[tuple[int, int], int] = {}
        reads: list[int] = []
        for readers in keyed.values():
            if len(readers) > 1:
                for reader in readers:
                    groups[reader] = len(reads)
                reads.append(len(readers))
        return _SharedReads(groups, tuple(reads))


class _Assembly:
    """An input assembled once for a shared-reads group: set when ``done`` is (``tensor`` None
    then: its assembly failed, and each reader assembles its own)."""

    __slots__ = ("done", "tensor")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.tensor: Tensor | None = None


# The keys of plan-wide preparation in a ``prepared`` dict (whose other keys are steps >= 0).
_LAYOUT_KEY = -1
_SHARED_READS_KEY = -3  # -2: the step dependencies of threads.py


class Executor:
    """The pieces that some devices of a plan hold, the steps they run, and what they measure.

    ``devices`` are the devices this executor plays. It holds only their pieces, runs only their
    tasks, and drops only their pieces after last use; its :meth:`trace` has rows for them alone
    (the others stay zero). Call the step methods in the plan's order, inside
    ``torch.no_grad()``.
    """

    def __init__(self, plan: Plan, graph: LayerGraph, devices: Iterable[int],
                 prepared: dict[int, object] | None = None, *, share_reads: bool = False) -> None:
        self.plan = plan
        # per-step preparation (where each input lies, its padding, the slices a transfer
        # reads) and the plan's layout; a caller that runs the same plan again passes the same
        # dict to skip this work
        self._prepared: dict[int, object] = {} if prepared is None else prepared
        self._layout = self.memo(_LAYOUT_KEY, _Layout, lambda: _Layout.of(plan))
        self.graph = graph
        self.devices = frozenset(devices)
        self.batch = plan.input_shape[0]
        self.store: dict[int, Tensor] = {}
        self._trace = Trace(n_devices=plan.n_devices)
        self._live = [0] * plan.n_devices
        self._peak_act = [0] * plan.n_devices
        self._seen_weights: list[dict[tuple[object, ...], int]] = [
            {} for _ in range(plan.n_devices)]
        self._sending = threading.Lock()
        # inputs that several devices assemble alike (share_reads, see run_task): the
        # assembled tensor of each group being read, and the reads of it still to come
        self._shares: _SharedReads | None = None
        if share_reads:
            if self.devices != frozenset(range(plan.n_devices)):
                raise ValueError("shared reads need an executor that plays every device")
            self._shares = self.memo(_SHARED_READS_KEY, _SharedReads,
                                     lambda: _SharedReads.of(plan, self._prepare))
        self._shared: dict[int, _Assembly] = {}
        self._shared_left = list(self._shares.reads) if self._shares else []
        self._sharing = threading.Lock()

    def memo(self, key: int, kind: type[_T], make: Callable[[], _T]) -> _T:
        """The ``kind`` kept in the prepared dict under ``key`` (negative: steps use the others),
        made by ``make()`` the first time: plan-wide preparation that outlives this run."""
        value = self._prepared.get(key)
        if not isinstance(value, kind):
            value = self._prepared[key] = make()
        return value

    def hold(self, pid: int, t: Tensor) -> None:
        """Store ``t`` as piece ``pid`` (its planned shape checked) and count its bytes."""
        planned = self._layout.shapes[pid]
        if t.shape != planned:
            p = self.plan.pieces[pid]
            raise PlanExecutionError(
                f"piece {pid} of '{p.tensor}' on device {p.device} has shape {tuple(t.shape)}, "
                f"planned {planned}")
        self.store[pid] = t
        device = self._layout.owners[pid]
        live = self._live[device] = self._live[device] + t.numel() * t.element_size()
        if live > self._peak_act[device]:
            self._peak_act[device] = live

    def hold_input(self, x: Tensor) -> None:
        """Hold the input pieces (made by step -1) of this executor's devices."""
        for pid in self._layout.inputs:
            if self._layout.owners[pid] in self.devices:
                self.hold(pid, x.detach())

    def needs_input(self) -> bool:
        """True when one of this executor's devices holds a piece of the input."""
        return any(self._layout.owners[pid] in self.devices for pid in self._layout.inputs)

    def _prepare(self, task: Task) -> _Prepared:
        """Where ``task``'s inputs lie and how to read them (worked out once per plan)."""
        prep = self._prepared.get(task.step)
        if not isinstance(prep, _Prepared):
            prep = self._prepared[task.step] = _prepare(task, self.plan, self.graph)
        return prep

    def _read(self, task: Task, i: int, inp: _Input) -> Tensor:
        """Input ``i`` of ``task``, read from its device's pieces; assembled once for all the
        tasks of a shared-reads group (the first to come assembles it while the others wait
        for it, the last drops it)."""
        group = None if self._shares is None else self._shares.groups.get((task.step, i))
        if group is None:
            return inp.gather.run(self.store, self.batch)
        with self._sharing:
            shared = self._shared.get(group)
            first = shared is None
            if shared is None:
                shared = self._shared[group] = _Assembly()
        if first:
            try:
                shared.tensor = inp.gather.run(self.store, self.batch)
            finally:
                shared.done.set()
        else:
            shared.done.wait()
        t = shared.tensor
        with self._sharing:
            self._shared_left[group] -= 1
            if self._shared_left[group] == 0:
                del self._shared[group]
        return inp.gather.run(self.store, self.batch) if t is None else t

    def run_task(self, task: Task) -> None:
        """Compute ``task`` from the pieces it reads, count its MACs and weights, hold its
        output.

        With ``share_reads``, an input that several devices assemble (copy or concatenate)
        from the same regions of the same memory (pieces received are views of the sender's,
        see :meth:`move`), such as each device's copy of the full input of an all-gather, is
        assembled once and read by each of them: the tensors would be equal, and a cluster
        pays no such assembly at all (it receives into place). The assembled tensor is never
        written (no op writes its inputs), and it is not a piece: the trace counts pieces.
        """
        prep = self._prepare(task)
        res = _run_task(prep, task, lambda i, inp: self._read(task, i, inp))
        self._trace.macs[task.device] += res.macs
        if task.weight is not None:
            used = sum(w.numel() * w.element_size() for w in res.weights)
            self._seen_weights[task.device][(task.layer, *task.weight.key())] = used
        self.hold(task.out, res.out)

    def region(self, transfer: Transfer) -> Tensor:
        """Exactly the region ``transfer`` sends: a view into the sender's piece (the piece
        itself when the region is all of it)."""
        send = self._prepared.get(transfer.step)
        if not isinstance(send, _Send):
            src = self.plan.pieces[transfer.src_piece]
            whole = transfer.box == src.box
            send = _Send(src.id, () if whole else transfer.box.relative_to(src.box))
            self._prepared[transfer.step] = send
        piece = self.store[send.src]
        return piece[send.slices] if send.slices else piece

    def sent(self, transfer: Transfer, data: Tensor) -> None:
        """Count ``data`` as sent by the transfer's source: its bytes and one message."""
        self._trace.bytes_sent[transfer.src] += data.numel() * data.element_size()
        self._trace.messages[transfer.src] += 1

    def received(self, transfer: Transfer, data: Tensor) -> None:
        """Hold ``data`` as the transfer's new piece on its destination; count its bytes."""
        self.hold(transfer.piece, data)
        self._trace.bytes_received[transfer.dst] += data.numel() * data.element_size()

    def move(self, transfer: Transfer) -> None:
        """Carry out ``transfer`` in memory (both its devices are this executor's): the
        destination holds the region itself, a read-only view of the sender's piece.

        No copy is needed because a piece is never written after it is made (every op returns
        a new tensor, and fused activations run in place only on that new tensor), so the view
        holds exactly the values a copy would; the bytes and the message are counted as for a
        copy. The ``gloo`` backend moves the same bytes over the network.
        """
        data = self.region(transfer)
        nbytes = data.numel() * data.element_size()
        with self._sending:  # a device's sends may run beside its other steps (threads.py)
            self._trace.bytes_sent[transfer.src] += nbytes
            self._trace.messages[transfer.src] += 1
        self.hold(transfer.piece, data)
        self._trace.bytes_received[transfer.dst] += nbytes

    def release(self, step: int, device: int | None = None) -> None:
        """Drop this executor's pieces whose last use was ``step`` (only ``device``'s, if
        given: a worker that plays one device of several)."""
        owners = self._layout.owners
        for pid in self.plan.frees[step]:
            owner = owners[pid]
            if owner in self.devices and device in (None, owner):
                t = self.store.pop(pid)
                self._live[owner] -= t.numel() * t.element_size()

    def run_steps(self) -> None:
        """Run every step of the plan in order (this executor plays every device)."""
        with torch.no_grad():
            for step in self.plan.steps:
                if isinstance(step, Task):
                    self.run_task(step)
                else:
                    self.move(step)
                self.release(step.step)

    def output(self) -> Tensor:
        """The final output, assembled (contiguous) from the output pieces, all held here."""
        out_box = Box.full(self.plan.shapes[self.plan.output])
        gather = _gather(self.plan.pieces, self.plan.output_pieces, out_box, "final output")
        return gather.run(self.store, self.batch).contiguous()

    def trace(self, backend: str = "local") -> Trace:
        """The measured trace: weights are each distinct slice read once, peak = weights + the
        most activation bytes held at once."""
        trace = self._trace
        trace.backend = backend
        for d in self.devices:
            trace.weight_bytes[d] = sum(self._seen_weights[d].values())
            trace.peak_bytes[d] = trace.weight_bytes[d] + self._peak_act[d]
        return trace


#: glibc's ``mallopt`` parameters (malloc.h) and the values :func:`keep_freed_memory` sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
KEPT_FREE_BYTES = 256 << 20
MMAP_ABOVE_BYTES = 32 << 20  # glibc's largest mmap threshold
_kept: bool | None = None  # None: not tried yet


def keep_freed_memory() -> bool:
    """Once per process, on glibc: keep up to :data:`KEPT_FREE_BYTES` of freed memory mapped for
    the next allocations, and serve allocations up to :data:`MMAP_ABOVE_BYTES` from the heap.
    True when the setting is in force.

    By default glibc returns the top of its heap to the kernel once more than twice the largest
    freed block lies free there. A partitioned run holds more activations at once than the model
    (every device's full-size partial sum, under ``input-channel``), frees them, and so gets its
    memory back as fresh pages on every call, which the kernel must fault in and zero: on VGG-16
    under ``input-channel``, 50,000 page faults and 90 ms of system time per call, a third of the
    run. The setting is process-wide (the model's own forward keeps its pages too); values set
    by the environment (``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_``) are left alone.
    """
    global _kept
    if _kept is None:
        _kept = _set_malloc_thresholds()
    return _kept


def _set_malloc_thresholds() -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or any(
            k in os.environ for k in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")):
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_ABOVE_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, KEPT_FREE_BYTES))


def run_local(plan: Plan, graph: LayerGraph, x: Tensor,
              prepared: dict[int, object] | None = None, *,
              parallel: bool = True) -> tuple[Tensor, Trace]:
    """Execute ``plan`` for input ``x``; return device 0's output and the measured trace.

    The devices run at the same time (``parallel``, the default): a step starts as soon as the
    steps it depends on are done, on worker threads sharing the intra-op threads torch may use
    (see :mod:`.threads`); with one thread, or when no two tasks may overlap, the steps run in
    the plan's order on this thread, as they always do with ``parallel=False``. The trace is
    the same either way. Measured on a 2-core machine (tests/benchmarks/test_bench_engine.py,
    docs/strategies.md), running the devices at the same time is the faster of the two at
    torch's default thread count for the strategies that split layers. ``prepared`` may be a
    dict kept by the caller between runs of the same plan and graph.
    """
    check_input(plan, x)
    keep_freed_memory()
    ex = Executor(plan, graph, range(plan.n_devices), prepared, share_reads=True)
    ex.hold_input(x)
    if parallel and plan.n_devices > 1 and torch.get_num_threads() > 1:
        from .threads import run_concurrently  # threads imports this module

        run_concurrently(ex)
    else:
        ex.run_steps()
    with torch.no_grad():
        output = ex.output()
    return output, ex.trace()


def _run_task(prep: _Prepared, task: Task, read: Callable[[int, _Input], Tensor]) -> RunResult:
    xs: list[Tensor | None] = []
    for i, inp in enumerate(prep.inputs):
        if inp is None:
            xs.append(None)
            continue
        x = read(i, inp)
        xs.append(x if inp.pad is None else F.pad(x, inp.pad, value=inp.fill))
    res = prep.op.run(xs, prep.out_box, task.weight, prep.native)
    if task.kind != "partial" and prep.layer.post:
        # activations run in place: never on an input's memory (a piece is never written)
        storage = res.out.untyped_storage().data_ptr()
        if any(x is not None and x.untyped_storage().data_ptr() == storage for x in xs):
            res.out = res.out.clone()
        for act in prep.layer.post:
            res.out = act.apply(res.out)
    return res
