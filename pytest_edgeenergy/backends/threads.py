"""The local backend's devices run at the same time: one thread per device, sharing the cores.

Each device's worker runs its own steps in the plan's order, as one rank of the ``gloo`` backend
does: its tasks, the transfers it sends (it copies the region and hands it over) and those it
receives (it waits for the data, then holds it). A step therefore starts as soon as its inputs
are there, while other devices compute: torch kernels release the GIL, so the devices'
kernels overlap. Every count of the trace is still taken by the device's own worker, in its
own steps' order, so the trace is what the sequential run measured.

The threads torch may use (``torch.get_num_threads()`` when the run starts) are a budget the
workers share, never exceed: a task takes that budget divided among the devices that compute
the same layer (all of it for a layer no other device computes), and waits until that many
are free; a copy takes one. When several wait, the earliest step of the plan goes first.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from ..plan import Plan, Task, Transfer
from .local import Executor


class _StoppedError(Exception):
    """Another worker failed: this one stops without running its step."""


class Cores:
    """A budget of intra-op threads that workers take from and give back."""

    def __init__(self, total: int) -> None:
        self.total = max(1, total)
        self.free = self.total
        self._waiting: list[int] = []  # steps waiting, earliest first
        self._cond = threading.Condition()
        self.aborted = False

    @contextmanager
    def held(self, step: int, count: int) -> Iterator[None]:
        """Hold ``count`` threads (at most the budget) while running ``step``."""
        count = min(count, self.total)
        with self._cond:
            heapq.heappush(self._waiting, step)
            while not self.aborted and (self._waiting[0] != step or self.free < count):
                self._cond.wait()
            if self.aborted:
                raise _StoppedError
            heapq.heappop(self._waiting)
            self.free -= count
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self.free += count
                self._cond.notify_all()

    def abort(self) -> None:
        """Wake every waiting worker (they then stop)."""
        with self._cond:
            self.aborted = True
            self._cond.notify_all()


def thread_shares(plan: Plan, budget: int) -> dict[int, int]:
    """Threads for each task: the budget divided among the devices computing the same layer."""
    devices: dict[str, set[int]] = {}
    for s in plan.steps:
        if isinstance(s, Task):
            devices.setdefault(s.layer, set()).add(s.device)
    return {s.step: max(1, budget // len(devices[s.layer]))
            for s in plan.steps if isinstance(s, Task)}


def device_steps(plan: Plan) -> dict[int, list[int]]:
    """The steps each device takes part in, in plan order: its tasks, the transfers it sends or
    receives, and the steps after which one of its pieces is freed."""
    steps: dict[int, list[int]] = {d: [] for d in range(plan.n_devices)}
    for s in plan.steps:
        involved = {s.device} if isinstance(s, Task) else {s.src, s.dst}
        involved.update(plan.pieces[p].device for p in plan.frees[s.step])
        for d in sorted(involved):
            steps[d].append(s.step)
    return {d: v for d, v in steps.items() if v}


class _Run:
    """One concurrent execution of a plan: the workers' shared state."""

    def __init__(self, ex: Executor, budget: int) -> None:
        self.ex = ex
        self.plan = ex.plan
        self.cores = Cores(budget)
        self.shares = thread_shares(self.plan, self.cores.total)
        self.handoff: dict[int, Tensor] = {}
        self.arrived = {s.step: threading.Event() for s in self.plan.steps
                        if isinstance(s, Transfer)}
        self.failures: list[tuple[int, BaseException]] = []
        self._lock = threading.Lock()

    def fail(self, step: int, exc: BaseException) -> None:
        """Record a worker's error and wake every other worker so that it stops."""
        with self._lock:
            self.failures.append((step, exc))
        self.cores.abort()
        for event in self.arrived.values():
            event.set()

    def work(self, device: int, steps: list[int]) -> None:
        """Run ``device``'s steps in order (in a worker thread)."""
        step = -1
        threads = 0
        try:
            with torch.no_grad():  # grad mode is per thread
                for step in steps:
                    if self.cores.aborted:
                        return
                    s = self.plan.steps[step]
                    if isinstance(s, Task):
                        if s.device == device:
                            want = self.shares[step]
                            with self.cores.held(step, want):
                                if threads != want:
                                    torch.set_num_threads(want)
                                    threads = want
                                self.ex.run_task(s)
                    else:
                        self._transfer(device, s)
                    self.ex.release(step, device)
        except _StoppedError:
            return
        except BaseException as exc:  # handed to the caller's thread
            self.fail(step, exc)

    def _transfer(self, device: int, s: Transfer) -> None:
        if s.src == device:
            with self.cores.held(s.step, 1):
                data = self.ex.region(s).clone()
            self.ex.sent(s, data)
            self.handoff[s.step] = data
            self.arrived[s.step].set()
        if s.dst == device:
            self.arrived[s.step].wait()
            if self.cores.aborted:
                raise _StoppedError
            self.ex.received(s, self.handoff.pop(s.step))


def run_concurrently(ex: Executor) -> None:
    """Run every step of ``ex.plan`` on ``ex`` (which plays every device), one worker thread
    per device, within the intra-op thread budget of the calling thread; re-raise the error of
    the earliest failing step, if any."""
    budget = torch.get_num_threads()
    run = _Run(ex, budget)
    workers = [threading.Thread(target=run.work, args=(d, steps), name=f"edge-device-{d}",
                                daemon=True)
               for d, steps in device_steps(ex.plan).items()]
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        torch.set_num_threads(budget)  # workers set the process-wide default too
    if run.failures:
        raise min(run.failures, key=lambda f: f[0])[1]
