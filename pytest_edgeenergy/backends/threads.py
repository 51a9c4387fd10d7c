"""The local backend's devices at the same time (``run_local(..., parallel=True)``): the plan's
steps run as soon as they may, on worker threads that share the cores.

A step may start when the device whose memory it changes (a task's device; a transfer's
receiver) has finished its previous memory event of the plan and the pieces it reads exist.
Dropping a sender's piece after the last transfer that reads it is an event of its own, on the
sender's chain (after every step that reads the piece), so a send waits for the piece, not for
the sender's later tasks. So each device's memory still goes through the plan's sequence, as
one rank of the ``gloo`` backend's does, and every count of the trace (the peak memory
included, which depends on that order) is what the steps one after another measure; steps of
different devices overlap. torch kernels release the GIL, so their kernels really run at the
same time.

The threads torch may use (``torch.get_num_threads()`` when the run starts) are a budget the
workers share, never exceed: as many workers as the budget (at most one per device), and a task
takes that budget divided among the devices that compute the same layer (all of it for a layer
no other device computes), waiting until that many are free; a transfer, a view of the sender's
piece (see :meth:`.Executor.move`), and a free take none, and are carried out at once by the
worker whose step made them ready rather than queued (they cost microseconds, a hand-over to a
worker more).
When several steps may start, the earliest of the plan goes first. When no two tasks may
overlap (a budget of one thread; a plan whose every layer one device computes, as ``layer``'s),
the steps run in turn on the caller's thread instead: there is nothing to gain from hand-offs.

The worker threads live across runs (one pool per process), so the per-thread state torch and
OpenMP build on a thread's first kernel is built once, not once per inference.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from ..graph.convkernel import whole_layer_threads
from ..plan import Plan, Task, Transfer
from .local import Executor

# The key of the step dependencies in an executor's prepared dict (see Executor.memo).
_DEPENDENCIES_KEY = -2


def thread_shares(plan: Plan, budget: int) -> dict[int, int]:
    """Threads for each task: the budget divided among the devices computing the same layer."""
    devices: dict[str, set[int]] = {}
    for s in plan.steps:
        if isinstance(s, Task):
            devices.setdefault(s.layer, set()).add(s.device)
    return {s.step: max(1, budget // len(devices[s.layer]))
            for s in plan.steps if isinstance(s, Task)}


def memory_events(plan: Plan) -> tuple[dict[int, list[int]], tuple[tuple[int, int], ...]]:
    """The events that change each device's memory, in plan order, and the free events.

    Events ``0 .. len(plan.steps) - 1`` are the steps; event ``len(plan.steps) + k`` is
    ``frees[k] == (step, device)``: dropping ``device``'s pieces whose last use was ``step``
    when ``step`` did not make anything on ``device`` (a transfer frees the sender's piece
    it read last, and allocates only on the receiver). A device's chain holds its tasks, the
    transfers it receives, the steps after which one of its own pieces is freed and its free
    events. (A transfer it only sends changes nothing on it: the free that may follow is an
    event of its own, so the send need not wait for the sender's earlier steps.)
    """
    chains: dict[int, list[int]] = {d: [] for d in range(plan.n_devices)}
    frees: list[tuple[int, int]] = []
    base = len(plan.steps)
    for s in plan.steps:
        own = s.device if isinstance(s, Task) else s.dst
        chains[own].append(s.step)
        for d in sorted({plan.pieces[p].device for p in plan.frees[s.step]} - {own}):
            chains[d].append(base + len(frees))
            frees.append((s.step, d))
    return {d: v for d, v in chains.items() if v}, tuple(frees)


def _reads(s: Task | Transfer) -> tuple[int, ...]:
    """The pieces a step reads."""
    if isinstance(s, Task):
        return tuple(p for pids in s.reads for p in pids)
    return (s.src_piece,)


@dataclass(frozen=True, slots=True)
class _Dependencies:
    """Each event's successors, how many predecessors it has, and how many devices compute its
    layer (0: a transfer or a free), with the free events (see :func:`memory_events`): worked
    out once per plan.

    An event follows (1) the previous event that changed the memory of its device, so each
    device's memory goes through the plan's sequence and its measured peak is the plan's; (2)
    the step that made each piece it reads; (3) when it frees pieces, every step that reads
    them (but itself).
    """

    successors: tuple[tuple[int, ...], ...]
    predecessors: tuple[int, ...]
    sharers: tuple[int, ...]
    frees: tuple[tuple[int, int], ...]

    @staticmethod
    def of(plan: Plan) -> _Dependencies:
        """The dependencies of ``plan``'s steps and free events."""
        chains, frees = memory_events(plan)
        base = len(plan.steps)
        after: list[set[int]] = [set() for _ in range(base + len(frees))]
        for chain in chains.values():
            for a, b in itertools.pairwise(chain):
                after[a].add(b)
        made = {p.id: p.step for p in plan.pieces}
        readers: dict[int, list[int]] = {}
        for s in plan.steps:
            for pid in _reads(s):
                readers.setdefault(pid, []).append(s.step)
                if made[pid] >= 0:
                    after[made[pid]].add(s.step)
        owners = [p.device for p in plan.pieces]
        own = {s.step: s.device if isinstance(s, Task) else s.dst for s in plan.steps}
        event_of = {free: base + k for k, free in enumerate(frees)}
        for s in plan.steps:
            for pid in plan.frees[s.step]:
                owner = owners[pid]
                event = s.step if owner == own[s.step] else event_of[(s.step, owner)]
                for r in readers.get(pid, ()):
                    if r != event:
                        after[r].add(event)
        count = [0] * len(after)
        for successors in after:
            for b in successors:
                count[b] += 1
        devices: dict[str, set[int]] = {}
        for t in plan.tasks:
            devices.setdefault(t.layer, set()).add(t.device)
        sharers = tuple(len(devices[s.layer]) if isinstance(s, Task) else 0 for s in plan.steps)
        return _Dependencies(tuple(tuple(sorted(a)) for a in after), tuple(count),
                             sharers + (0,) * len(frees), frees)

    def threads(self, budget: int) -> list[int]:
        """The threads each event takes: a task the budget divided among the devices computing
        its layer (as :func:`thread_shares`), a transfer or a free none."""
        return [max(1, budget // k) if k else 0 for k in self.sharers]


class _Run:
    """One concurrent execution of a plan: the ready events, the free threads, the failures."""

    def __init__(self, ex: Executor, budget: int) -> None:
        self.ex = ex
        self.steps = ex.plan.steps
        deps = ex.memo(_DEPENDENCIES_KEY, _Dependencies, lambda: _Dependencies.of(ex.plan))
        self.successors = deps.successors
        self.frees = deps.frees
        self.waiting = list(deps.predecessors)
        self.need = deps.threads(budget)
        self.budget = self.free = budget
        self.left = len(self.waiting)
        self.failures: list[tuple[int, BaseException]] = []  # (step, error)
        self._cond = threading.Condition()
        self.ready: list[int] = []

    def start(self) -> None:
        """Queue the tasks ready from the start and carry out the other events that are."""
        self._make_ready([i for i, n in enumerate(self.waiting) if n == 0])

    def _take(self) -> int | None:
        """The earliest ready task, once its threads are free (None: nothing left to do)."""
        with self._cond:
            while True:
                if self.failures or self.left == 0:
                    return None
                if self.ready and self.need[self.ready[0]] <= self.free:
                    step = heapq.heappop(self.ready)
                    self.free -= self.need[step]
                    return step
                self._cond.wait()

    def _carry_out(self, event: int) -> None:
        """A transfer (a view and two counters) or a free event: microseconds, cheaper than
        handing it to a worker."""
        if event >= len(self.steps):
            step, device = self.frees[event - len(self.steps)]
            self.ex.release(step, device)
            return
        transfer = self.steps[event]
        assert isinstance(transfer, Transfer)
        self.ex.move(transfer)
        self.ex.release(event, transfer.dst)

    def _make_ready(self, events: list[int]) -> None:
        """Queue the ready tasks among ``events`` and carry out at once the other events, and
        what those make ready in turn (called holding the lock, or before any worker runs)."""
        while events:
            event = events.pop()
            if event < len(self.steps) and isinstance(self.steps[event], Task):
                heapq.heappush(self.ready, event)
                continue
            try:
                self._carry_out(event)
            except BaseException as exc:  # handed to the caller's thread
                self.failures.append((self._step_of(event), exc))
                return
            events.extend(self._finish(event))

    def _step_of(self, event: int) -> int:
        return event if event < len(self.steps) else self.frees[event - len(self.steps)][0]

    def _finish(self, event: int) -> list[int]:
        """Count ``event`` done; the events this makes ready."""
        self.left -= 1
        ready = []
        for nxt in self.successors[event]:
            self.waiting[nxt] -= 1
            if self.waiting[nxt] == 0:
                ready.append(nxt)
        return ready

    def _done(self, step: int) -> None:
        """Count task ``step`` done and make ready what waited for it."""
        with self._cond:
            self.free += self.need[step]
            self._make_ready(self._finish(step))
            self._cond.notify_all()

    def _fail(self, step: int, exc: BaseException) -> None:
        with self._cond:
            self.failures.append((step, exc))
            self._cond.notify_all()

    def work(self) -> None:
        """Run ready tasks until none is left or a step failed (in a worker thread)."""
        threads = 0
        # grad mode is per thread; a conv slice takes the algorithm of the whole layer on the
        # budget, as the unpartitioned model runs it, not on this task's share (convkernel.py)
        with torch.no_grad(), whole_layer_threads(self.budget):
            while (step := self._take()) is not None:
                task = self.steps[step]
                assert isinstance(task, Task)
                try:
                    if threads != self.need[step]:
                        threads = self.need[step]
                        torch.set_num_threads(threads)
                    self.ex.run_task(task)
                    self.ex.release(step, task.device)
                except BaseException as exc:  # handed to the caller's thread
                    self._fail(step, exc)
                    return
                self._done(step)


_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_pid = 0  # a forked child inherits the pool object but none of its threads
_pool_lock = threading.Lock()


def _workers(count: int) -> ThreadPoolExecutor:
    """The process's worker pool, with room for ``count`` workers at once."""
    global _pool, _pool_size, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_size < count or _pool_pid != os.getpid():
            if _pool is not None and _pool_pid == os.getpid():
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(count, thread_name_prefix="edge-worker")
            _pool_size, _pool_pid = count, os.getpid()
        return _pool


def run_concurrently(ex: Executor) -> None:
    """Run every step of ``ex.plan`` on ``ex`` (which plays every device) on worker threads,
    within the intra-op thread budget of the calling thread; re-raise the error of the earliest
    failing step, if any."""
    budget = max(1, torch.get_num_threads())
    run = _Run(ex, budget)
    if all(n in (0, budget) for n in run.need):  # every task takes every thread: no overlap
        ex.run_steps()
        return
    run.start()
    if run.failures:
        raise min(run.failures, key=lambda f: f[0])[1]
    count = min(budget, ex.plan.n_devices)
    try:
        pool = _workers(count)
        futures = [pool.submit(run.work) for _ in range(count)]
        for f in futures:
            f.result()
    finally:
        torch.set_num_threads(budget)  # workers may set the process-wide default too
    if run.failures:
        raise min(run.failures, key=lambda f: f[0])[1]
