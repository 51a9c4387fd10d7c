"""One rank's share of a plan, with non-blocking transfers and a measured timeline.

Every process of the ``gloo`` backend (a worker on this host, a worker on another host, or the
user's own process as rank 0) runs :func:`run_rank`: the local backend's :class:`Executor` for
its own device, and the transfers it takes part in moved by a :class:`Comm` (a torch.distributed
process group).

How transfers overlap: every receive of the rank is posted (``irecv``) before its first step,
into a tensor of the planned shape; a send is posted (``isend``) as soon as the rank reaches it
and never waited for until the end (two helper threads wait for the posted receives and sends
in order and note when each completed); a received piece is waited for only at its own step in the
plan's order, i.e. when a later task may need it. So a device computes while its earlier sends
drain and its later receives arrive, and independent transfers between different pairs of
devices proceed at the same time.

Why it cannot deadlock: only a receive's wait blocks. By induction on the plan's order, when
every step before ``s`` has completed on every device, the sender of transfer ``s`` has passed
its own earlier steps (none of which waits for anything later) and posted the send, and the
receive was posted at the start: transfer ``s`` completes. Each message is matched by its
(source, tag = step number), so no other message can be taken for it, and each device receives
exactly the planned regions, into tensors of exactly the planned shape.

What the counts see: the executor is told of each send, receive and release in the plan's
order, so the measured bytes, messages and peak memory follow the same accounting as the
local backend's (the receive buffers posted early are the same tensors).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

import torch
from torch import Tensor

from ..plan import Plan, Step, Task, Transfer
from ..trace import Event
from .local import Executor

__all__ = ["Comm", "RankResult", "RunCancelledError", "Work", "describe_step", "run_rank"]


class Work(Protocol):
    """A posted non-blocking operation (what ``isend``/``irecv`` return)."""

    def wait(self, timeout: timedelta = ...) -> bool:
        """Block until done; raise on failure or timeout."""
        ...

    def is_completed(self) -> bool:
        """True once done."""
        ...


class Comm(Protocol):
    """Point-to-point messages between ranks."""

    def isend(self, tensor: Tensor, dst: int, tag: int) -> Work:
        """Post a send of ``tensor`` to ``dst``."""
        ...

    def irecv(self, tensor: Tensor, src: int, tag: int) -> Work:
        """Post a receive from ``src`` into ``tensor``."""
        ...


class RunCancelledError(Exception):
    """A rank's share was abandoned because another rank failed."""


def describe_step(step: Step) -> str:
    """Where a rank is, for an error report: ``at step 7 (task 'conv2' ...)``."""
    if isinstance(step, Task):
        return f"at step {step.step} (task '{step.layer}' ({step.kind}) on device {step.device})"
    return (f"at step {step.step} (transfer of {step.bytes} B of piece {step.src_piece} from "
            f"device {step.src} to device {step.dst})")


@dataclass(slots=True)
class RankResult:
    """What one rank produced: its events, and (rank 0) the output and when it was ready."""

    events: list[Event] = field(default_factory=list)
    output: Tensor | None = None
    output_s: float = 0.0


@dataclass(slots=True)
class _Posted:
    step: Transfer
    work: Work
    tensor: Tensor
    start_s: float
    end_s: float = 0.0
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


class _Progress:
    """Waits for posted transfers on a thread of its own, in posting order, and notes when
    each one completed (a gloo ``Work`` tells completion only to ``wait``). The wait releases
    the GIL, so the rank computes meanwhile."""

    def __init__(self, now: Callable[[], float], timeout_s: float, name: str) -> None:
        self._now = now
        self._timeout = timedelta(seconds=timeout_s)
        self._queue: queue.SimpleQueue[_Posted | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def add(self, posted: _Posted) -> _Posted:
        self._queue.put(posted)
        return posted

    def _loop(self) -> None:
        while (posted := self._queue.get()) is not None:
            try:
                posted.work.wait(self._timeout)
            except BaseException as exc:
                posted.error = exc
            posted.end_s = self._now()
            posted.done.set()

    def close(self) -> None:
        self._queue.put(None)


def run_rank(ex: Executor, rank: int, comm: Comm, t0: float, timeout_s: float,
             where: Callable[[str], None] = lambda _: None,
             cancelled: Callable[[], bool] = lambda: False,
             at: Callable[[int], None] = lambda _: None,
             overlap: bool = True) -> RankResult:
    """Run ``rank``'s steps of ``ex.plan``; ``t0`` is the run's start on ``time.time()``'s
    clock; every wait is bounded by ``timeout_s``; ``where`` is told each step as it starts
    (for error reports) and ``at`` its number; ``cancelled`` is polled while waiting: when it
    turns true the run is abandoned with :class:`RunCancelledError`. ``overlap=False`` is the
    blocking schedule the backend had before (for measuring what overlap gains): a receive is
    posted at its own step and waited for there, and a send is waited for as soon as it is
    posted."""
    plan: Plan = ex.plan
    result = RankResult()
    deadline = time.monotonic() + timeout_s

    def now() -> float:
        return time.time() - t0

    def finish(posted: _Posted) -> None:
        while not posted.done.wait(0.05):
            if cancelled():
                raise RunCancelledError("another rank failed")
            if time.monotonic() > deadline:
                raise TimeoutError(f"transfer of step {posted.step.step} did not complete "
                                   f"within {timeout_s:g} s")
        if posted.error is not None:
            raise posted.error

    receiving = _Progress(now, timeout_s, f"edgeenergy-recv-{rank}")
    sending = _Progress(now, timeout_s, f"edgeenergy-send-{rank}")
    recvs: dict[int, _Posted] = {}
    sends: list[_Posted] = []
    try:
        with torch.no_grad():
            for transfer in plan.transfers if overlap else ():
                if transfer.dst == rank and transfer.src != rank:
                    buf = torch.empty((ex.batch, *transfer.box.shape), dtype=torch.float32)
                    recvs[transfer.step] = receiving.add(_Posted(
                        transfer, comm.irecv(buf, transfer.src, transfer.step), buf, now()))
            for step in plan.steps:
                if isinstance(step, Task):
                    if step.device == rank:
                        where(describe_step(step))
                        at(step.step)
                        start = now()
                        ex.run_task(step)
                        result.events.append(Event(rank, "task", step.step, start, now(),
                                                   macs=step.macs))
                elif step.src == rank and step.dst == rank:  # to itself: no network
                    data = ex.region(step).clone()
                    ex.sent(step, data)
                    ex.received(step, data)
                elif step.src == rank:
                    where(describe_step(step))
                    at(step.step)
                    data = ex.region(step).contiguous()
                    sends.append(sending.add(_Posted(
                        step, comm.isend(data, step.dst, step.step), data, now())))
                    if not overlap:
                        finish(sends[-1])
                    ex.sent(step, data)
                elif step.dst == rank:
                    where(describe_step(step))
                    at(step.step)
                    if not overlap:
                        buf = torch.empty((ex.batch, *step.box.shape), dtype=torch.float32)
                        recvs[step.step] = receiving.add(_Posted(
                            step, comm.irecv(buf, step.src, step.step), buf, now()))
                    posted = recvs.pop(step.step)
                    finish(posted)
                    ex.received(step, posted.tensor)
                    result.events.append(Event(rank, "recv", step.step, posted.start_s,
                                               posted.end_s, bytes=step.bytes, peer=step.src))
                ex.release(step.step)
            if rank == 0:
                where("while assembling the output")
                result.output = ex.output()
                result.output_s = now()
            for posted in sends:
                where(describe_step(posted.step) + " (waiting for the send to complete)")
                finish(posted)
                result.events.append(Event(rank, "send", posted.step.step, posted.start_s,
                                           posted.end_s, bytes=posted.step.bytes,
                                           peer=posted.step.dst))
    finally:
        receiving.close()
        sending.close()
    where("done")
    return result
