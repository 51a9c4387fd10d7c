"""The local backend's devices at the same time (``run_local(..., parallel=True)``): the plan's
steps run as soon as they may, on worker threads that share the cores.

A step may start when every device it involves (a task's device; a transfer's two devices; the
owner of a piece freed after it) has finished its previous step of the plan. So each device
still sees its own steps in the plan's order, as one rank of the ``gloo`` backend does, and
every count of the trace (the peak memory included, which depends on that order) is what the
steps one after another measure; steps of different devices overlap. torch kernels release
the GIL, so their kernels really run at the same time.

The threads torch may use (``torch.get_num_threads()`` when the run starts) are a budget the
workers share, never exceed: as many workers as the budget (at most one per device), and a task
takes that budget divided among the devices that compute the same layer (all of it for a layer
no other device computes), waiting until that many are free; a transfer, a view of the sender's
piece (see :meth:`.Executor.move`), takes none, and is carried out at once by the worker whose
step made it ready rather than queued (it costs microseconds, a hand-over to a worker more).
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


def memory_steps(plan: Plan) -> dict[int, list[int]]:
    """The steps that change each device's memory, in plan order: its tasks, the transfers it
    receives, and the steps after which one of its pieces is freed. (A transfer it only sends
    changes nothing on it.)"""
    steps: dict[int, list[int]] = {d: [] for d in range(plan.n_devices)}
    for s in plan.steps:
        involved = {s.device} if isinstance(s, Task) else {s.dst}
        involved.update(plan.pieces[p].device for p in plan.frees[s.step])
        for d in sorted(involved):
            steps[d].append(s.step)
    return {d: v for d, v in steps.items() if v}


def _reads(s: Task | Transfer) -> tuple[int, ...]:
    """The pieces a step reads."""
    if isinstance(s, Task):
        return tuple(p for pids in s.reads for p in pids)
    return (s.src_piece,)


@dataclass(frozen=True, slots=True)
class _Dependencies:
    """Each step's successors, how many predecessors it has, and how many devices compute its
    layer (0: a transfer): worked out once per plan.

    A step follows (1) the previous step that changed the memory of a device whose memory it
    changes (:func:`memory_steps`), so each device's memory goes through the plan's sequence
    and its measured peak is the plan's; (2) the step that made each piece it reads; (3) when it
    frees a piece, every other step that reads that piece.
    """

    successors: tuple[tuple[int, ...], ...]
    predecessors: tuple[int, ...]
    sharers: tuple[int, ...]

    @staticmethod
    def of(plan: Plan) -> _Dependencies:
        """The dependencies of ``plan``'s steps."""
        after: list[set[int]] = [set() for _ in plan.steps]
        for chain in memory_steps(plan).values():
            for a, b in itertools.pairwise(chain):
                after[a].add(b)
        made = {p.id: p.step for p in plan.pieces}
        readers: dict[int, list[int]] = {}
        for s in plan.steps:
            for pid in _reads(s):
                readers.setdefault(pid, []).append(s.step)
                if made[pid] >= 0:
                    after[made[pid]].add(s.step)
            for pid in plan.frees[s.step]:
                for r in readers.get(pid, ()):
                    if r != s.step:
                        after[r].add(s.step)
        count = [0] * len(plan.steps)
        for successors in after:
            for b in successors:
                count[b] += 1
        devices: dict[str, set[int]] = {}
        for t in plan.tasks:
            devices.setdefault(t.layer, set()).add(t.device)
        sharers = tuple(len(devices[s.layer]) if isinstance(s, Task) else 0 for s in plan.steps)
        return _Dependencies(tuple(tuple(sorted(a)) for a in after), tuple(count), sharers)

    def threads(self, budget: int) -> list[int]:
        """The threads each step takes: a task the budget divided among the devices computing
        its layer (as :func:`thread_shares`), a transfer none."""
        return [max(1, budget // k) if k else 0 for k in self.sharers]


class _Run:
    """One concurrent execution of a plan: the ready steps, the free threads, the failures."""

    def __init__(self, ex: Executor, budget: int) -> None:
        self.ex = ex
        self.steps = ex.plan.steps
        deps = ex.memo(_DEPENDENCIES_KEY, _Dependencies, lambda: _Dependencies.of(ex.plan))
        self.successors = deps.successors
        self.waiting = list(deps.predecessors)
        self.need = deps.threads(budget)
        self.ready = [i for i, n in enumerate(self.waiting) if n == 0]
        heapq.heapify(self.ready)
        self.budget = self.free = budget
        self.left = len(self.steps)
        self.failures: list[tuple[int, BaseException]] = []
        self._cond = threading.Condition()

    def _take(self) -> int | None:
        """The earliest ready step, once its threads are free (None: nothing left to do)."""
        with self._cond:
            while True:
                if self.failures or self.left == 0:
                    return None
                if self.ready and self.need[self.ready[0]] <= self.free:
                    step = heapq.heappop(self.ready)
                    self.free -= self.need[step]
                    return step
                self._cond.wait()

    def _done(self, step: int) -> None:
        """Count ``step`` done and make ready what waited for it; carry out at once the
        transfers this makes ready (a transfer is a view and two counters, microseconds:
        cheaper than handing it to a worker), and what those make ready in turn."""
        with self._cond:
            self.free += self.need[step]
            done = [step]
            while done:
                finished = done.pop()
                self.left -= 1
                for nxt in self.successors[finished]:
                    self.waiting[nxt] -= 1
                    if self.waiting[nxt] != 0:
                        continue
                    s = self.steps[nxt]
                    if isinstance(s, Task):
                        heapq.heappush(self.ready, nxt)
                        continue
                    try:
                        self.ex.move(s)
                        self.ex.release(nxt)
                    except BaseException as exc:  # handed to the caller's thread
                        self.failures.append((nxt, exc))
                        break
                    done.append(nxt)
            self._cond.notify_all()

    def _fail(self, step: int, exc: BaseException) -> None:
        with self._cond:
            self.failures.append((step, exc))
            self._cond.notify_all()

    def work(self) -> None:
        """Run ready steps until none is left or a step failed (in a worker thread)."""
        threads = 0
        # grad mode is per thread; a conv slice takes the algorithm of the whole layer on the
        # budget, as the unpartitioned model runs it, not on this task's share (convkernel.py)
        with torch.no_grad(), whole_layer_threads(self.budget):
            while (step := self._take()) is not None:
                try:
                    s = self.steps[step]
                    if isinstance(s, Task):
                        if threads != self.need[step]:
                            threads = self.need[step]
                            torch.set_num_threads(threads)
                        self.ex.run_task(s)
                    else:
                        self.ex.move(s)
                    self.ex.release(step)
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
