"""Rank 0 of a cluster of hosts: the user's process, joined with worker ranks through env://.

:class:`RemoteWorkers` hosts the rendezvous store (:mod:`.rendezvous`), waits for the worker
ranks started with ``python -m pytest_edgeenergy worker`` on the other hosts, and runs plans
with them: it posts each rank its job, ships each rank only its own weight slices (once per
layer graph and slice set), runs device 0's share itself (it holds the input and ends with the
output), and collects every rank's measured row and timeline into one :class:`Trace`.

Failures end the run within its timeout with one :class:`PartitionError` naming the rank, its
device, its host and the step it was at: a rank that raised (its traceback), a rank whose
process ended (how, from its supervisor), a rank that stopped responding (no heartbeat), or a
run that did not finish in time. The generation is then abandoned (every worker rank process
exits and its supervisor starts a fresh one) and the next run starts a new one.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..errors import PartitionError
from ..graph.layergraph import LayerGraph
from ..meters.measure import StopRule
from ..meters.ranks import ShareMeasurement, measure_share, measure_timeout
from ..plan import Plan
from ..trace import Event, Trace
from .local import Executor, check_input
from .rank import RankResult, run_rank
from .rendezvous import HEARTBEAT_S, PREFIX, GroupComm, Rendezvous, dumps, loads, make_group
from .slices import slice_graph
from .worker import GRAPH_TAG

__all__ = ["RemoteWorkers"]

#: A rank whose heartbeat has not changed for this long is reported as not responding.
SILENT_S = max(3.0, 6 * HEARTBEAT_S)
_POLL_S = 0.002


@dataclass(frozen=True, slots=True)
class _Failure:
    rank: int
    how: str  # "failed", "died", "stopped responding", "timed out"
    where: str
    detail: str
    order: int  # root causes first: died < stopped responding < failed < timed out


class RemoteWorkers:
    """Rank 0 of a gloo group whose other ranks run on other hosts (see the module docstring).

    ``rendezvous`` says where the store listens and how long to wait; the group is made when
    the first plan runs (or by :meth:`connect`), so workers may start before or after.
    """

    def __init__(self, rendezvous: Rendezvous) -> None:
        self.rv = rendezvous
        self.n_devices = rendezvous.world_size
        self.host = socket.gethostname()
        self._store: Any = rendezvous.store(True)
        self._generation = 0
        self._group: Any = None
        self._job = 0
        self._hosts: dict[int, tuple[str, int]] = {}
        self._shipped: dict[int, tuple[int, tuple[object, ...]]] = {}
        self._graphs: dict[int, LayerGraph] = {}  # keeps shipped graphs' ids unique
        self._closed = False
        self.startup_s = 0.0
        self._finalizer = weakref.finalize(self, _stop, self._store)

    # ---- public ---------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        """True until :meth:`close`."""
        return not self._closed

    def connect(self) -> None:
        """Start a generation and wait for every worker rank to join it."""
        if self._group is not None:
            return
        t0 = time.monotonic()
        self._generation += 1
        self._job = 0
        self._shipped.clear()
        g = self._generation
        self._store.set(f"{PREFIX}generation", str(g))
        deadline = t0 + self.rv.join_timeout_s
        missing = set(range(1, self.n_devices))
        while missing:
            for r in sorted(missing):
                key = f"{PREFIX}g{g}/join/{r}"
                if self._store.check([key]):
                    self._hosts[r] = loads(self._store.get(key))
                    missing.discard(r)
            if missing and time.monotonic() > deadline:
                self._store.set(f"{PREFIX}g{g}/abort", "1")
                ranks = ", ".join(str(r) for r in sorted(missing))
                raise PartitionError(
                    f"gloo backend (env://): rank(s) {ranks} of {self.n_devices} did not join "
                    f"the rendezvous at {self.rv.addr}:{self.rv.port} within "
                    f"{self.rv.join_timeout_s:g} s (join timeout); start them on their hosts "
                    f"with: MASTER_ADDR={self.rv.addr} MASTER_PORT={self.rv.port} "
                    f"WORLD_SIZE={self.n_devices} python -m pytest_edgeenergy worker --rank R")
            time.sleep(0.01)
        self._group = make_group(self._store, g, 0, self.rv)
        self.startup_s = time.monotonic() - t0

    def run(self, plan: Plan, graph: LayerGraph, x: Tensor, *,
            timeout_s: float | None = None) -> tuple[Tensor, Trace]:
        """Execute ``plan`` for ``x``; return device 0's output and the measured trace."""
        rows, result, ex = self._execute(plan, graph, x, timeout_s, ())
        trace = ex.trace("gloo")
        events: list[Event] = list(result.events)
        for r, (row, rank_events, _held) in rows.items():
            trace.set_device(r, row)
            events += rank_events
        trace.timeline = sorted(events, key=lambda e: (e.start_s, e.device, e.step))
        trace.wall_s = result.output_s
        assert result.output is not None
        return result.output, trace

    def measure(self, plan: Plan, graph: LayerGraph, x: Tensor, spec: str,
                rule: StopRule | None = None, *,
                timeout_s: float | None = None) -> list[ShareMeasurement]:
        """Every rank (this process as rank 0, the workers on their hosts) measures its
        device's share of ``plan`` with the meter ``spec`` names, opened on its own machine,
        in step (:mod:`..meters.ranks`); one per device."""
        rows, share, _ = self._execute(plan, graph, x, timeout_s, (spec, rule))
        return [share] + [rows[r][3] for r in range(1, self.n_devices)]

    def _execute(self, plan: Plan, graph: LayerGraph, x: Tensor, timeout_s: float | None,
                 meter: tuple[Any, ...]) -> tuple[dict[int, Any], Any, Executor]:
        """Post the job to every worker rank and run rank 0's share here (with ``meter``,
        (spec, rule): measure every share instead); the workers' answers, rank 0's result
        and its executor."""
        if self._closed:
            raise PartitionError("the remote gloo workers are closed")
        if plan.n_devices != self.n_devices:
            raise PartitionError(f"a plan for {plan.n_devices} devices cannot run on a world "
                                 f"of {self.n_devices} ranks (WORLD_SIZE)")
        check_input(plan, x)
        timeout = self.rv.timeout_s if timeout_s is None else timeout_s
        self.connect()
        self._job += 1
        g, job, store = self._generation, self._job, self._store
        comm = GroupComm(self._group)
        t0 = time.time()
        started = time.monotonic()
        blobs: dict[int, bytes] = {}
        try:
            for r in range(1, self.n_devices):
                sig = (id(graph), tuple(sorted((t.layer, t.weight.key()) for t in plan.tasks
                                               if t.device == r and t.weight is not None)))
                if self._shipped.get(r) != sig:
                    blobs[r] = dumps(slice_graph(graph, plan, r))
                    self._graphs[id(graph)] = graph
                    self._shipped[r] = sig
                store.set(f"{PREFIX}g{g}/job/{job}/{r}",
                          dumps((plan, len(blobs.get(r, b"")), t0, timeout, *meter)))
        except BaseException:
            self._abandon()
            raise
        cancel = threading.Event()
        box: dict[str, Any] = {}
        ex = _holding(plan, graph, x)
        where = ["while sending the worker ranks their weight slices"]

        def own_share() -> None:
            """Ship the weight slices, then run device 0's share (failures go to the
            monitor, which names the rank that caused them)."""
            try:
                sends = [(comm.isend(buf, r, GRAPH_TAG), buf) for r, buf in
                         ((r, torch.frombuffer(bytearray(b), dtype=torch.uint8))
                          for r, b in blobs.items())]
                if meter:
                    for work, _ in sends:
                        work.wait()
                    box["result"] = measure_share(
                        lambda: run_rank(_holding(plan, graph, x), 0, comm, time.time(), timeout,
                                         lambda w: where.__setitem__(0, w),
                                         cancelled=cancel.is_set),
                        meter[0], meter[1], comm, 0, self.n_devices, timeout, self.host)
                    return
                box["result"] = run_rank(ex, 0, comm, t0, timeout,
                                         lambda w: where.__setitem__(0, w),
                                         cancelled=cancel.is_set)
                for work, _ in sends:
                    work.wait()
            except BaseException as exc:
                box["error"] = exc

        thread = threading.Thread(target=own_share, name="edgeenergy-rank-0", daemon=True)
        thread.start()
        wait_s = measure_timeout(meter[1], timeout) if meter else timeout
        try:
            rows = self._monitor(job, started, wait_s, thread, box, where)
        except BaseException:
            cancel.set()
            self._abandon()
            thread.join(10.0)  # unblocks once the abandoned ranks' connections close
            raise
        result: RankResult | ShareMeasurement = box["result"]
        return rows, result, ex

    def close(self) -> None:
        """End the session: every worker rank process exits, its supervisor too."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._store.set(f"{PREFIX}stop", "1")
        time.sleep(2 * HEARTBEAT_S)  # the workers see it before the store goes away
        if self._group is not None:
            with contextlib.suppress(Exception):
                self._group.abort()
            self._group = None
        self._finalizer.detach()
        self._store = None

    def __enter__(self) -> RemoteWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- waiting --------------------------------------------------------------------------
    def _describe(self, r: int) -> str:
        host, pid = self._hosts.get(r, (self.host, 0)) if r else (self.host, 0)
        pid_text = f", pid {pid}" if pid else ""
        return f"rank {r} (device {r}, host {host}{pid_text})"

    def _monitor(self, job: int, started: float, timeout_s: float, thread: threading.Thread,
                 box: dict[str, Any], where: list[str]) -> dict[int, Any]:
        g, store = self._generation, self._store
        pending = set(range(1, self.n_devices))
        rows: dict[int, Any] = {}
        beats: dict[int, tuple[object, float]] = {}
        failures: list[_Failure] = []
        deadline = started + timeout_s
        next_beat = 0.0
        own_failed_at: float | None = None
        while True:
            now = time.monotonic()
            for r in sorted(pending):
                done, error = f"{PREFIX}g{g}/done/{job}/{r}", f"{PREFIX}g{g}/error/{job}/{r}"
                if store.check([done]):
                    rows[r] = loads(store.get(done))
                    store.delete_key(done)
                    pending.discard(r)
                elif store.check([error]):
                    at, detail, _ = loads(store.get(error))
                    failures.append(_Failure(r, "failed", at, detail.rstrip(), 2))
                    pending.discard(r)
            if now >= next_beat:
                next_beat = now + HEARTBEAT_S / 2
                for r in range(1, self.n_devices):
                    died = f"{PREFIX}g{g}/died/{r}"
                    if store.check([died]):
                        how, _, _ = loads(store.get(died))
                        store.delete_key(died)
                        failures.append(_Failure(r, "died", self._last_where(r), how, 0))
                        pending.discard(r)
                    elif r in pending:
                        beat = self._beat(r)
                        seen = beats.get(r)
                        if seen is None or seen[0] != beat:
                            beats[r] = (beat, now)
                        elif now - seen[1] > SILENT_S:
                            failures.append(_Failure(
                                r, "stopped responding", self._last_where(r),
                                f"no heartbeat for {now - seen[1]:.1f} s (stopped, hung in "
                                "native code, or unreachable)", 1))
                            pending.discard(r)
            if not thread.is_alive() and "error" in box and not failures:
                # Rank 0's own share failed: give the others a moment to report the cause.
                own_failed_at = now if own_failed_at is None else own_failed_at
                if now - own_failed_at > 1.0 or not pending:
                    failures.append(_Failure(0, "failed", where[0], repr(box["error"]), 3))
            if failures:
                break
            if not pending and not thread.is_alive():
                return rows
            if now > deadline:
                late = sorted(pending) + ([0] if thread.is_alive() else [])
                for r in late:
                    at = where[0] if r == 0 else self._last_where(r)
                    failures.append(_Failure(r, "timed out", at,
                                             f"no result within {timeout_s:g} s (timeout)", 4))
                break
            time.sleep(_POLL_S)
        failures.sort(key=lambda f: f.order)
        first = failures[0]
        lines = [f"gloo backend: {self._describe(first.rank)} {first.how} {first.where}:",
                 first.detail]
        for f in failures[1:]:
            last = f.detail.strip().splitlines()[-1] if f.detail.strip() else f.detail
            lines.append(f"(also {self._describe(f.rank)} {f.how} {f.where}: {last})")
        lines.append(f"generation {g} of the group was abandoned; every worker rank restarts "
                     "and the next run starts a new one")
        raise PartitionError("\n".join(lines))

    def _beat(self, r: int) -> object:
        key = f"{PREFIX}g{self._generation}/alive/{r}"
        return loads(self._store.get(key))[0] if self._store.check([key]) else None

    def _last_where(self, r: int) -> str:
        key = f"{PREFIX}g{self._generation}/alive/{r}"
        if self._store.check([key]):
            return str(loads(self._store.get(key))[1])
        return "before its first heartbeat"

    def _abandon(self) -> None:
        with contextlib.suppress(Exception):
            self._store.set(f"{PREFIX}g{self._generation}/abort", "1")
        if self._group is not None:
            with contextlib.suppress(Exception):
                self._group.abort()
        self._group = None


def _holding(plan: Plan, graph: LayerGraph, x: Tensor) -> Executor:
    """Rank 0's executor, holding the input."""
    ex = Executor(plan, graph, (0,))
    ex.hold_input(x)
    return ex


def _stop(store: Any) -> None:
    with contextlib.suppress(Exception):
        store.set(f"{PREFIX}stop", "1")
